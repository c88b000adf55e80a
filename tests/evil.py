"""Checkpoints that would run code when unpickled: if the target file ever appears, code ran."""
import io
import pickle
from pathlib import Path

import torch


class Plant:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (Path(self.target), "code ran"))


def evil_checkpoints(target: Path) -> dict[str, bytes]:
    """file name -> bytes: a torch zip, a legacy torch file, a bare pickle, and a pickle named .safetensors."""
    torch_zip = io.BytesIO()
    torch.save({"weight": torch.zeros(2), "payload": Plant(str(target))}, torch_zip)
    legacy = io.BytesIO()
    torch.save({"payload": Plant(str(target))}, legacy, _use_new_zipfile_serialization=False)
    return {"evil.pt": torch_zip.getvalue(), "legacy.pth": legacy.getvalue(),
            "bare.pkl": pickle.dumps(Plant(str(target))), "bare.safetensors": pickle.dumps(Plant(str(target)))}
