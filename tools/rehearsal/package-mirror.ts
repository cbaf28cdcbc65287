// The rehearsal's package mirror: a flat Debian repository of what the launch script installs
// (docker.io, cron, rclone and whatever of their dependencies and recommends the machine's base
// image lacks), fetched on this host for the machine's release and served over HTTP on the outer
// host's address on the machines' network. The base image's apt sources point there
// (tools/machine/base-image.sh: `deb [trusted=yes] http://<default gateway>:<port>/ ./`), so the
// real launch script runs its real `apt-get update` and `apt-get install` at first boot.
//
//   npx tsx tools/rehearsal/package-mirror.ts [--address <ip>] [--port <n>]   serve until killed
//   npx tsx tools/rehearsal/package-mirror.ts --prepare                        only fetch and index
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { LAUNCH_PACKAGES } from "../../infra/render/launch-script.js";
import { baseImage, machinesNetwork } from "../machine/machine.js";
import { execOk } from "../process.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** Where fetched repositories are kept, one folder per (base image's installed set, package list). */
export const MIRROR_CACHE = join(REPO, ".cache", "package-mirror");
/** The port the base image's apt sources name; both read TT_PACKAGE_MIRROR_PORT. */
export const PACKAGE_MIRROR_PORT = Number(process.env.TT_PACKAGE_MIRROR_PORT ?? 4580);
/** Bump when the fetch or the index below changes: cached repositories are keyed by it. */
const RECIPE = 1;
const DEBIAN = process.env.TT_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
const DEBIAN_SECURITY = process.env.TT_DEBIAN_SECURITY_MIRROR ?? "http://deb.debian.org/debian-security";

/**
 * Run in a throwaway container of the machine's own base image, so the packages are resolved
 * against exactly what a machine has installed (its dpkg status, its release, its apt): apt-get
 * update against Debian first (a fresh host has nothing), then `install --download-only` into
 * /out, then the flat repository's index (Packages, Packages.gz, Release) with dpkg-deb.
 */
const FETCH = String.raw`set -euo pipefail
cat >/tmp/debian.list <<EOF
deb $DEBIAN bookworm main
deb $DEBIAN bookworm-updates main
deb $DEBIAN_SECURITY bookworm-security main
EOF
apt=(apt-get -qq -o Dir::Etc::SourceList=/tmp/debian.list -o Dir::Etc::SourceParts=/nonexistent -o Dir::Cache::Archives=/out -o APT::Install-Recommends=true -o Debug::NoLocking=1)
"${"$"}{apt[@]}" update
"${"$"}{apt[@]}" install -y --download-only "$@" >/dev/null
cd /out
rm -rf partial lock
: >Packages
for deb in *.deb; do
  {
    dpkg-deb --field "$deb"
    echo "Filename: ./$deb"
    echo "Size: $(stat -c %s "$deb")"
    echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
    echo
  } >>Packages
done
gzip -9 -k -f Packages
{
  echo "Origin: tt-package-mirror"
  echo "Label: tt-package-mirror"
  echo "Architectures: $(dpkg --print-architecture)"
  echo "Date: $(date -Ru)"
  echo "SHA256:"
  for f in Packages Packages.gz; do echo " $(sha256sum "$f" | cut -d' ' -f1) $(stat -c %s "$f") $f"; done
} >Release
ls *.deb | wc -l`;

export interface PreparedMirror {
  directory: string;
  /** .deb files in it. */
  packages: number;
  /** Whether this call fetched them (false: found in the cache). */
  fetched: boolean;
}

/**
 * The repository for `packages` on machines of `image` (default: the base image), fetched once
 * and cached under .cache/package-mirror/<key>/, where the key covers the image's installed
 * packages, the package list and this recipe. Needs the outer engine and deb.debian.org.
 */
export async function preparePackageMirror(options: { image?: string; packages?: readonly string[] } = {}): Promise<PreparedMirror> {
  const image = options.image ?? (await baseImage());
  const packages = [...(options.packages ?? LAUNCH_PACKAGES)];
  const status = (await execOk("docker", ["run", "--rm", "--network", "none", "--entrypoint", "cat", image, "/var/lib/dpkg/status"])).stdout;
  const key = createHash("sha256").update(`${RECIPE}\n${packages.join(" ")}\n${DEBIAN}\n${DEBIAN_SECURITY}\n${status}`).digest("hex").slice(0, 16);
  const directory = join(MIRROR_CACHE, key);
  const count = () => readdirSync(directory).filter((f) => f.endsWith(".deb")).length;
  if (existsSync(join(directory, "Release"))) return { directory, packages: count(), fetched: false };
  mkdirSync(MIRROR_CACHE, { recursive: true });
  const partial = `${directory}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial);
  try {
    await execOk("docker", [
      "run", "--rm", "--network", "host", "--entrypoint", "bash",
      "-e", `DEBIAN=${DEBIAN}`, "-e", `DEBIAN_SECURITY=${DEBIAN_SECURITY}`,
      "-v", `${partial}:/out`, image, "-c", FETCH, "fetch", ...packages,
    ]);
    // another run may have finished the same key meanwhile: either copy is complete
    if (!existsSync(join(directory, "Release"))) {
      rmSync(directory, { recursive: true, force: true });
      renameSync(partial, directory);
    }
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
  return { directory, packages: count(), fetched: true };
}

export interface PackageMirror {
  /** http://<address>:<port>/ */
  url: string;
  directory: string;
  packages: number;
  /** Files served since the start (paths, in order). */
  served: string[];
  /** Whether it answers now. */
  readonly up: boolean;
  /** Stops answering: connections refused, as a mirror that is down. */
  stop(): Promise<void>;
  /** Answers again, on the same address and port. */
  start(): Promise<void>;
}

/**
 * Fetches (or finds cached) the repository and serves it on `address`:`port`: the outer host's
 * address on the machines' network, where the bucket's stand-in listens too. Flat: only the
 * files of the folder, GET and HEAD.
 */
export async function startPackageMirror(address: string, options: { port?: number; image?: string } = {}): Promise<PackageMirror> {
  const port = options.port ?? PACKAGE_MIRROR_PORT;
  const prepared = await preparePackageMirror({ image: options.image });
  const { directory } = prepared;
  const served: string[] = [];
  let server: Server | undefined;
  const sockets = new Set<Socket>();

  const listen = () =>
    new Promise<void>((ok, fail) => {
      const s = createServer((req, res) => {
        const name = basename(decodeURIComponent((req.url ?? "/").split("?")[0] ?? "/"));
        const file = join(directory, name);
        if ((req.method !== "GET" && req.method !== "HEAD") || !name || name.startsWith(".") || !existsSync(file) || !statSync(file).isFile()) {
          res.writeHead(404).end();
          return;
        }
        served.push(name);
        const stat = statSync(file);
        res.writeHead(200, { "Content-Length": stat.size, "Last-Modified": stat.mtime.toUTCString(), "Content-Type": "application/octet-stream" });
        if (req.method === "HEAD") res.end();
        else createReadStream(file).pipe(res);
      });
      s.on("connection", (socket: Socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
      });
      s.once("error", (error: NodeJS.ErrnoException) =>
        fail(error.code === "EADDRINUSE" ? new Error(`package mirror: ${address}:${port} is in use (another rehearsal's mirror? TT_PACKAGE_MIRROR_PORT moves it, and the base image with it)`) : error),
      );
      s.listen(port, address, () => {
        server = s;
        ok();
      });
    });

  await listen();
  return {
    url: `http://${address}:${port}/`,
    directory,
    packages: prepared.packages,
    served,
    get up() {
      return server !== undefined;
    },
    async stop() {
      const s = server;
      if (!s) return;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => s.close(() => done()));
    },
    async start() {
      if (!server) await listen();
    },
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { address: { type: "string" }, port: { type: "string" }, prepare: { type: "boolean" } } });
  if (values.prepare) {
    const prepared = await preparePackageMirror();
    console.log(`${prepared.directory}: ${prepared.packages} packages${prepared.fetched ? " (fetched)" : " (cached)"}`);
  } else {
    const address = values.address ?? (await machinesNetwork()).gateway;
    const mirror = await startPackageMirror(address, { port: values.port ? Number(values.port) : undefined });
    console.log(`package mirror: ${mirror.url} serves ${mirror.packages} packages from ${mirror.directory}`);
    await new Promise(() => {});
  }
}
