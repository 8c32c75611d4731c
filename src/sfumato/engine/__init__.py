"""The generation engine: requests in, pictures out, around a denoising loop of our own.

- ``generate``: txt2img, img2img and inpaint (``generate.generate``)
- ``samplers``: A1111 sampler and schedule names -> diffusers schedulers
- ``loop``: the denoising loop and its hooks; ``guidance``: CFG and AND-parts
- ``seeds``: CPU float32 noise per picture, variation seeds
- ``inputs`` / ``masks``: init pictures and masks ("only masked" crops, fill, pasting back)
- ``latents``: VAE encode/decode (float32 retry on NaNs), cheap previews

Importing this package loads no heavy library; torch and diffusers load when a function runs.
"""
