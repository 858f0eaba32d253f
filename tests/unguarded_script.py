"""A training script WITHOUT an ``if __name__ == "__main__":`` guard, as users write them (run by
tests/test_faults.py and benchmarks/faults.py):

    python tests/unguarded_script.py VIDEO_FOLDER ON_ERROR

Every spawned decode worker imports it again (as ``__mp_main__``), which would index the folder and start
a loader of its own in each worker."""

import sys

import vidloader as vl

ds = vl.VideoDataset.from_folder(sys.argv[1], use_cache=False, progress=False)
loader = vl.VideoLoader(
    ds, batch_size=4, frames_per_clip=4, num_workers=2, worker_type="process", on_error=sys.argv[2]
)
clips = sum(len(b) for b in loader)
print(f"clips {clips} of {loader.num_clips}", flush=True)
