"""The benchmark suite (`make bench`): each figure against a floor measured in the same run."""
