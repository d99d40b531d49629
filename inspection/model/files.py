"""Model files, local or gs://: a gs:// file (a model, the files beside it, an input guard) is
downloaded once per instance and read from local disk after that."""

from __future__ import annotations

import os
import tempfile
import threading

from inspection import layout


def local_model_path(location: str, companions: tuple[str, ...] = ()) -> str:
    """A gs:// model (and the files beside it that exist) is downloaded once per instance; a local
    path is used as is."""
    if not layout.is_gs_uri(location):
        return location
    from google.api_core import exceptions as gexc

    from inspection import storage

    bucket, name = layout.split_gs_uri(location)
    # Keyed by the model object's generation: a model replaced at the same name is a new download,
    # never a stale copy from an earlier one.
    model = storage.client().bucket(bucket).get_blob(name)
    if model is None:
        raise gexc.NotFound(f"{location} does not exist")
    folder = os.path.join(
        tempfile.gettempdir(), f"model-{layout.digest(f'{bucket}/{name}')[:16]}-{model.generation}"
    )
    os.makedirs(folder, exist_ok=True)
    prefix = name.rpartition("/")[0]
    target = os.path.join(folder, os.path.basename(name))
    for wanted, local in [
        (name, target),
        *((f"{prefix}/{c}".lstrip("/"), os.path.join(folder, c)) for c in companions),
    ]:
        if os.path.exists(local):
            continue
        # Download beside it, then rename: never a half-written file. One partial file per process
        # and thread, since a new instance's first requests may all be opening the model.
        partial = f"{local}.{os.getpid()}.{threading.get_ident()}.part"
        try:
            storage.client().bucket(bucket).blob(wanted).download_to_filename(partial)
        except gexc.NotFound:
            if wanted == name:
                raise
            continue
        os.replace(partial, local)
    return target
