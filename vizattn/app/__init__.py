"""The Streamlit page's parts (app.py at the repo root is only its entry point): cached loaders and forwards
(`cache`), the sidebar, the query controls, the panel-grid component and one module per section. Only this
package and app.py import streamlit; `pure` holds the page's helpers that do not need it."""
