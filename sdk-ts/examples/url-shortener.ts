// requestHandler: a URL shortener on documents (collection "short_link" in the route's
// namespace). POST /?url=... answers {"id"}; GET /{id} redirects.
import type { ModuleContext } from "dgate";
import { createHash } from "dgate/crypto";
import { addDocument, getDocument } from "dgate/state";

interface Link {
  url: string;
}

const shortId = (url: string): string => createHash("sha1").update(url).digest("base64rawurl").slice(-8);

export const requestHandler = async (ctx: ModuleContext): Promise<void> => {
  const req = ctx.request();
  const res = ctx.response();
  if (req.method === "GET") {
    const id = ctx.pathParam("id");
    if (!id) {
      res.status(400).json({ error: "id is required" });
      return;
    }
    const doc = await getDocument<Link>(id, "short_link");
    if (!doc) {
      res.status(404).json({ error: "not found" });
      return;
    }
    res.redirect(doc.data.url);
  } else if (req.method === "POST") {
    const link = req.query.get("url");
    if (!link || !/^https?:\/\//.test(link)) {
      res.status(400).json({ error: "url must be an http(s) URL" });
      return;
    }
    const id = shortId(link);
    await addDocument<Link>({ id, collection: "short_link", data: { url: link } });
    res.status(201).json({ id });
  } else {
    res.status(405).setHeader("allow", "GET, POST").json({ error: "method not allowed" });
  }
};
