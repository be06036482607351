"""What every layer uses: paths, atomic files, seeds, progress, the device, the profiles and the artifact manifest."""
