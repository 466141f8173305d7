// Preloaded by bun test (bunfig.toml). Keeps unit tests quiet unless WGSLIRPY_LOG is set.
process.env.WGSLIRPY_LOG ??= "silent";
