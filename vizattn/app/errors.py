"""One handler for every part of the page: a sentence a user caused is shown as that sentence, in the fragment
or the script it came from (a fragment's exceptions never reach the script's own handler)."""
from __future__ import annotations

from contextlib import contextmanager

import streamlit as st

from vizattn.errors import VizattnError

OUT_OF_MEMORY = "This model and image need more memory than the server has; try a smaller image or model."


@contextmanager
def one_sentence():
    """Show a VizattnError (or running out of memory) as one sentence where it happened; Streamlit's own
    control flow (st.stop, reruns) passes through."""
    try:
        yield
    except VizattnError as err:
        st.error(str(err))
    except MemoryError:
        st.error(OUT_OF_MEMORY)
