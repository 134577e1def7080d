"""World models: video tokenizer, latent action model, MaskGIT dynamics, GenieRedux(-G), inference API."""
