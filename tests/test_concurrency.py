"""Several sessions at once: Streamlit serves sessions from threads sharing one cached model. Each thread
driving the library on its own image and pixel must get exactly the maps it gets alone."""
import threading

import numpy as np
import torch

from vizattn.data import generate_scene
from vizattn.explore import panels, run_model
from vizattn.models.segmenter import ModelConfig, build_model


def test_threads_on_one_shared_model_get_their_own_maps():
    torch.manual_seed(0)
    model = build_model(ModelConfig("ann")).eval()  # two attention modules, AFNB then APNB
    jobs = [(generate_scene(seed, (64, 80)).image, (7 * seed % 64, 11 * seed % 80)) for seed in range(1, 7)]

    def maps(image, pixel):
        return {(p.module, p.view): p.grid_map for p in panels(run_model(model, image), *pixel)}

    alone = [maps(*job) for job in jobs]
    got = [None] * len(jobs)
    errors = []
    start = threading.Barrier(len(jobs))

    def session(i):
        try:
            start.wait()
            for _ in range(3):  # several reruns, interleaved with the other sessions' forwards
                got[i] = maps(*jobs[i])
        except Exception as err:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(err)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for mine, ref in zip(got, alone):
        assert mine.keys() == ref.keys()
        for key in ref:
            np.testing.assert_array_equal(mine[key], ref[key])
