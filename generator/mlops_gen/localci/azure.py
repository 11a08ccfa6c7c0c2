def run(ctx, path):
    raise NotImplementedError
