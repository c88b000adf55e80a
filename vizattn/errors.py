"""The one exception type for mistakes a user can make (a bad file, a click off the map, an unknown name).

Its message is a sentence that says what was wrong and what to do; the app and the CLI show it as is.
"""


class VizattnError(Exception):
    """A problem caused by the input, explained in one actionable sentence."""
