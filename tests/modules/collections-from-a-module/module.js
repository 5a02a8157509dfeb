// DGate's dgate/state collection functions: a module creates a collection of its namespace,
// reads it back, fills and empties it, and deletes it; another namespace's is refused.
import { addCollection, getCollection, deleteCollection, addDocument, deleteDocument } from "dgate/state";

export async function requestModifier(ctx) {
  const h = ctx.request().headers;
  await addCollection({ name: "links", schema: { type: "object" }, visibility: "private" });
  const c = await getCollection("links");
  h.set("x-collection", [c.name, c.namespace, c.visibility, c.type].join(","));
  h.set("x-missing", String(await getCollection("nothing")));
  await addDocument({ id: "a", collection: "links", data: { url: "x" } });
  try {
    await deleteCollection("links");
  } catch (e) {
    h.set("x-full", e.message);
  }
  await deleteDocument({ id: "a", collection: "links" });
  h.set("x-deleted", String(await deleteCollection({ name: "links" })));
  h.set("x-again", String(await deleteCollection("links")));
  try {
    await addCollection({ name: "theirs", namespace: "other" });
  } catch (e) {
    h.set("x-other", e.message);
  }
}
