"""Edge inspection agent: the device half (never imports TensorFlow or ``tools``)."""

__version__ = "0.1.0"
