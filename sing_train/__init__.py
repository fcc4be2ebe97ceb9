"""The training tool beside the engine: data (image folders, latents files, webdataset shards), the frozen VAE and
text encoders, the accelerate launch and the run's files. It imports sing_core; sing_core never imports it, so the
hosts that load sing_core at generation time never load accelerate, webdataset, diffusers or transformers.

Its dependencies are requirements/train.txt. `python -m sing_core train` / `encode` (and `singdiffusion train`) hand
over to sing_train.commands only when called.
"""
