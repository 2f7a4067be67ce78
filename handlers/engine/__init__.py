"""The conversation engine: prompt model, flow definitions, runner."""
