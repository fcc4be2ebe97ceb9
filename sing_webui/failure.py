"""Making a SingDiffusion failure fail the request, with its message, in the UI and in the API.

The webui catches and only logs exceptions raised inside script hooks, then generates anyway: a user who enabled
SingDiffusion would silently get an image without it. So a failure is raised from p.sample (and from the sampler,
once sampling has begun), which the webui does not catch: the UI shows the message, the API answers with its
HTTP status and JSON detail, and the server keeps serving.
"""

from __future__ import annotations

from fastapi import HTTPException

TAG = "SingDiffusion"


class SingDiffusionError(HTTPException):
    """An error whose message names the cause and the fix; status 422 for what the request asked, 500 for files."""

    def __init__(self, message: str, status_code: int = 422):
        super().__init__(status_code=status_code, detail=message if message.startswith(TAG) else f"{TAG}: {message}")

    def __str__(self) -> str:
        return str(self.detail)


def fail_request(p, error: SingDiffusionError) -> None:
    """Arrange for this generation to stop with `error` at the next point the webui does not catch."""
    print(f"*** {error}", flush=True)

    def raise_error(*_args, **_kwargs):
        raise error

    p.sample = raise_error
    sampler = getattr(p, "sampler", None)
    if sampler is not None:
        sampler.sample = raise_error
        sampler.sample_img2img = raise_error
