/** The package version (bundled into a `bun build --compile` binary from package.json). */
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
