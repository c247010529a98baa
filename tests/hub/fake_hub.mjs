// A fake Hugging Face hub for `bitnet pull`'s tests, on loopback only: the hub's API and
// resolve endpoints on 127.0.0.1, and a storage host on 127.0.0.2 that large (LFS) files
// redirect to, as the real hub redirects to its CDN. It speaks what huggingface_hub reads:
//   GET  /api/models/ORG/NAME/revision/REV  -> {"sha", "siblings": [{"rfilename"}]}
//   HEAD /ORG/NAME/resolve/REV/PATH         -> X-Repo-Commit, ETag / X-Linked-Etag (sha256),
//                                              X-Linked-Size, 302 to storage for LFS files
// Small (git) files answer HEAD with a same-host 307 to /api/resolve-cache/..., as the real hub
// does. Faults are armed per test and consumed once: drop the connection after N bytes, send
// corrupted bytes, answer 500 a number of times, ignore a Range request, redirect once more
// on the storage host.
import crypto from "node:crypto";
import http from "node:http";

export const TOKEN = "hf_test_token_0123456789";

function gitBlobSha1(data) {
  return crypto.createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
}

function listen(server, host) {
  return new Promise((resolve) => server.listen(0, host, () => resolve(server.address().port)));
}

export async function startFakeHub() {
  const repos = new Map();
  const log = [];
  const faults = { dropAfter: 0, corrupt: false, fail500: 0, ignoreRange: false, storageRedirect: false };
  const blobs = new Map();  // sha256 -> Buffer

  const storage = http.createServer((req, res) => {
    log.push({ host: "storage", method: req.method, url: req.url, headers: req.headers });
    const [where, sha] = req.url.split("?")[0].split("/").slice(1);
    const data = blobs.get(sha);
    if (!data) { res.writeHead(404).end(); return; }
    if (faults.fail500 > 0) { faults.fail500--; res.writeHead(500).end("storage error"); return; }
    if (faults.storageRedirect && where === "blobs") {
      faults.storageRedirect = false;
      res.writeHead(302, { Location: `/cdn/${sha}?sig=def` }).end();
      return;
    }
    serveBytes(req, res, data, {});
  });
  const storagePort = await listen(storage, "127.0.0.2");
  const storageUrl = `http://127.0.0.2:${storagePort}`;

  function serveBytes(req, res, data, headers) {
    let start = 0;
    let range = req.headers.range;
    if (range && faults.ignoreRange) { faults.ignoreRange = false; range = undefined; }
    if (range) {
      const m = /^bytes=(\d+)-$/.exec(range);
      if (!m) { res.writeHead(400).end(); return; }
      start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, { "Content-Range": `bytes */${data.length}` }).end();
        return;
      }
    }
    let body = data.subarray(start);
    if (faults.corrupt && req.method === "GET") {
      faults.corrupt = false;
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    const h = { ...headers, "Content-Length": body.length, "Accept-Ranges": "bytes" };
    if (range) h["Content-Range"] = `bytes ${start}-${data.length - 1}/${data.length}`;
    res.writeHead(range ? 206 : 200, h);
    if (req.method === "HEAD") { res.end(); return; }
    if (faults.dropAfter > 0 && body.length > faults.dropAfter) {
      const n = faults.dropAfter;
      faults.dropAfter = 0;
      res.write(body.subarray(0, n), () => setTimeout(() => res.socket.destroy(), 20));
      return;
    }
    res.end(body);
  }

  function repoError(res, status, code, message) {
    res.writeHead(status, { "X-Error-Code": code, "X-Error-Message": message,
                            "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: message }));
  }

  const hub = http.createServer((req, res) => {
    log.push({ host: "hub", method: req.method, url: req.url, headers: req.headers });
    const url = new URL(req.url, "http://x");
    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    const cacheHop = parts[0] === "api" && parts[1] === "resolve-cache";
    const api = parts[0] === "api" && parts[1] === "models";
    const [org, name] = api || cacheHop ? parts.slice(cacheHop ? 3 : 2, cacheHop ? 5 : 4) : parts.slice(0, 2);
    const repo = repos.get(`${org}/${name}`);
    if (!repo) { repoError(res, 404, "RepoNotFound", "Repository not found"); return; }
    if (repo.gated && req.headers.authorization !== `Bearer ${TOKEN}`) {
      repoError(res, 401, "GatedRepo", "Access to this repository is restricted");
      return;
    }
    if (api && parts[4] === "revision") {
      const rev = parts[5];
      if (rev !== "main" && rev !== repo.commit) {
        repoError(res, 404, "RevisionNotFound", "Invalid rev id");
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ id: `${org}/${name}`, sha: repo.commit,
                               siblings: [...repo.files.keys()].map((f) => ({ rfilename: f })) }));
      return;
    }
    if (cacheHop) {  // /api/resolve-cache/models/ORG/NAME/COMMIT/PATH: the bytes of a git file
      const f = repo.files.get(parts.slice(6).join("/"));
      if (!f || parts[5] !== repo.commit) { repoError(res, 404, "EntryNotFound", "no such entry"); return; }
      serveBytes(req, res, f.data, { "X-Repo-Commit": repo.commit, "ETag": `"${f.sha1}"` });
      return;
    }
    if (!api && parts[2] === "resolve") {
      const rev = parts[3];
      const path = parts.slice(4).join("/");
      const f = repo.files.get(path);
      if (!f || (rev !== "main" && rev !== repo.commit)) {
        repoError(res, 404, "EntryNotFound", `${path} does not exist`);
        return;
      }
      const common = { "X-Repo-Commit": repo.commit };
      if (f.lfs) {
        res.writeHead(302, { ...common, "Location": `${storageUrl}/blobs/${f.sha256}?sig=abc`,
                             "X-Linked-Etag": `"${f.sha256}"`, "X-Linked-Size": f.data.length,
                             "ETag": `"${f.sha1}"`, "Content-Length": 0 });
        res.end();
        return;
      }
      // Like the hub: a relative 307 to its resolve cache, with the commit and ETag on it.
      res.writeHead(307, { ...common, "ETag": `"${f.sha1}"`,
                           "Location": `/api/resolve-cache/models/${org}/${name}/${repo.commit}/${path}`,
                           "Content-Length": 0 });
      res.end();
      return;
    }
    res.writeHead(404).end();
  });
  const hubPort = await listen(hub, "127.0.0.1");

  return {
    url: `http://127.0.0.1:${hubPort}`,
    log,
    faults,
    // files: {path: Buffer}; files whose name ends .gguf or .safetensors are LFS files.
    addRepo(repoName, files, { gated = false } = {}) {
      const commit = crypto.createHash("sha1").update(repoName + Math.random()).digest("hex");
      const map = new Map();
      for (const [p, data] of Object.entries(files)) {
        const lfs = /\.(gguf|safetensors)$/.test(p);
        const sha256 = crypto.createHash("sha256").update(data).digest("hex");
        if (lfs) blobs.set(sha256, data);
        map.set(p, { data, lfs, sha256, sha1: gitBlobSha1(data) });
      }
      repos.set(repoName, { commit, gated, files: map });
      return { commit, files: map };
    },
    storageGets() { return log.filter((e) => e.host === "storage" && e.method === "GET"); },
    close() { hub.close(); storage.close(); hub.closeAllConnections(); storage.closeAllConnections(); },
  };
}
