"""The one exception type for mistakes a user can make (a bad file, a click off the map, an unknown name).

Its message is a sentence that says what was wrong and what to do; the app and the CLI show it as is.
"""


class VizattnError(Exception):
    """A problem caused by the input, explained in one actionable sentence."""


class Refusals:
    """The one memory of refusals, shared by the library and the page: what was refused once (the same bytes, the
    same file at the same modification time, the same forward) is refused again at once with the same sentence,
    without being parsed, decoded or run a second time. Bounded (least recently refused dropped first) and safe to
    share between the server's session threads."""

    def __init__(self, limit: int = 256):
        import threading
        from collections import OrderedDict

        self.limit = limit
        self._kept: OrderedDict = OrderedDict()  # key -> (the name it was refused under, the sentence)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def check(self, key, name: str | None = None) -> None:
        """Raise the kept sentence for `key`, if any: under the name it has now (an upload renamed, same bytes)."""
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None:
            old, sentence = kept
            raise VizattnError(sentence.replace(f"'{old}'", f"'{name}'") if name and old else sentence)

    def run(self, key, fn, *args, name: str | None = None, **kwargs):
        """fn(*args, **kwargs), or its refusal: kept under `key` and raised, now and on every later call."""
        self.check(key, name)
        try:
            return fn(*args, **kwargs)
        except VizattnError as err:
            with self._lock:
                self._kept[key] = (name, str(err))
                self._kept.move_to_end(key)
                while len(self._kept) > self.limit:
                    self._kept.popitem(last=False)
            raise

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()


REFUSALS = Refusals()
