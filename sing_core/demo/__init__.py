"""The CPU demo: synthetic latents with known brightness, an exact host denoiser, a trained module, two samplers."""
