"""vizattn — click a pixel, see where each attention module looked: `streamlit run app.py`. A thin entry over the
page in vizattn/app/ (sidebar, query controls, cached forwards, one file per section), which `vizattn app` runs
from the installed package."""
from vizattn.app.page import run

run()
