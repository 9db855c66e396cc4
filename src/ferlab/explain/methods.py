"""The saliency methods by name (light: the command line lists them without loading torch)."""

METHODS = ("gradient", "smoothgrad", "integrated-gradients", "gradcam")
