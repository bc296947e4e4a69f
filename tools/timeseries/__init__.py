"""The sensor time-series toolchain: synth, windows, CNN-LSTM training, TFLite conversion, evaluation."""
