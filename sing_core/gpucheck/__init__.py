"""`python -m sing_core bench gpu`: the module on a GPU, side by side in one run.

Half-precision parity (x̂0 in float16 and bfloat16 against float32, and the start they give at σ0 = 14.6), speed
(our SingUNet against diffusers' UNet2DConditionModel with the same weights, CUDA events, medians over paired
rounds), memory (the forward's peak; nothing held after a generation that releases the module) and training
throughput (one step of the trainer, with and without gradient checkpointing).

`--device cpu --rehearse` runs every one of these paths on the CPU at tiny sizes (CI does, through
tests/unit/test_gpu_check_rehearsal.py); where a CUDA-only measurement has no CPU equivalent the report says so.
Nothing here is imported at generation time; diffusers is imported only by the speed rows.
"""
