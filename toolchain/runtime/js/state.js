// dgate/state: documents of the module's namespace, with DGate's signatures. Each function
// returns a Promise; documents come back as {id, collection, data} with data parsed.
const N = globalThis.__dgate_native;
const settle = (f) => {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
};
const parse = (d) => d && { id: d.id, collection: d.collection, data: JSON.parse(d.data) };
const need = (v, what) => {
  if (typeof v !== "string" || !v) throw new TypeError(what + " must be a non-empty string");
  return v;
};

export const getDocument = (id, collection) =>
  settle(() => parse(N.docGet(need(collection, "collection"), need(id, "id"))));
export const getDocuments = (opts) =>
  settle(() => {
    const { collection, limit = 100, offset = 0 } = opts || {};
    return N.docList(need(collection, "collection"), limit, offset).map(parse);
  });
export const addDocument = (doc) =>
  settle(() => {
    const { id, collection, data } = doc || {};
    N.docSet(need(collection, "collection"), need(id, "id"), JSON.stringify(data === undefined ? null : data));
    return { id, collection, data };
  });
export const updateDocument = addDocument;
// deleteDocument(id, collection), or DGate's deleteDocument({id, collection}).
export const deleteDocument = (id, collection) =>
  settle(() => {
    if (id !== null && typeof id === "object") ({ id, collection } = id);
    return N.docDelete(need(collection, "collection"), need(id, "id"));
  });
// Collections of the module's namespace, as the admin API shows and takes them.
export const getCollection = (name) =>
  settle(() => {
    const json = N.colGet(need(name, "name"));
    return json === undefined ? undefined : JSON.parse(json);
  });
export const addCollection = (collection) =>
  settle(() => {
    const c = collection || {};
    need(c.name, "name");
    N.colSet(JSON.stringify(c));
    return c;
  });
// deleteCollection(name), or DGate's deleteCollection({name}).
export const deleteCollection = (collection) =>
  settle(() => {
    const name = collection !== null && typeof collection === "object" ? collection.name : collection;
    return N.colDelete(need(name, "name"));
  });
export default {
  getDocument, getDocuments, addDocument, updateDocument, deleteDocument,
  getCollection, addCollection, deleteCollection,
};
