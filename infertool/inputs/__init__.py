"""What models are fed: generated data, npz/npy, `.pb` folders, images, audio and ground-truth labels."""
