"""google-api-python-client (Debian's python3-googleapi) against the Storage emulator.

Usage: storage_client.py EMULATOR_URL BUCKET DISCOVERY_DOCUMENT
Builds the Storage v1 client from a discovery document pointed at the emulator, then uploads
(multipart and resumable in chunks), lists, downloads, patches metadata in a batch and deletes,
printing one JSON line of what the service answered, for the test to check.
"""
import json
import sys

from googleapiclient.discovery import build_from_document
from googleapiclient.http import MediaInMemoryUpload, build_http

url, bucket, document_path = sys.argv[1], sys.argv[2], sys.argv[3]
with open(document_path) as f:
    document = json.load(f)
document["rootUrl"] = url.rstrip("/") + "/"
# build_http: the client's own transport (it treats 308 as "resume incomplete", not a redirect).
storage = build_from_document(document, http=build_http())
objects = storage.objects()

small = objects.insert(bucket=bucket, name="python/small.txt", body={"metadata": {"by": "python"}},
                       media_body=MediaInMemoryUpload(b"hello from python\n", mimetype="text/plain")).execute()

large_body = bytes(range(256)) * 2400  # 600 KiB, uploaded in 256 KiB chunks
request = objects.insert(bucket=bucket, name="python/large.bin",
                         media_body=MediaInMemoryUpload(large_body, mimetype="application/octet-stream",
                                                        chunksize=256 * 1024, resumable=True))
large = None
chunks = 0
while large is None:
    _, large = request.next_chunk()
    chunks += 1

listed = objects.list(bucket=bucket, prefix="python/").execute()
downloaded = objects.get_media(bucket=bucket, object="python/small.txt").execute()

patched = {}
def remember(request_id, response, exception):
    patched[request_id] = str(exception) if exception else response.get("metadata")
batch = storage.new_batch_http_request(callback=remember)
batch.add(objects.patch(bucket=bucket, object="python/small.txt", body={"metadata": {"batch": "one"}}), request_id="small")
batch.add(objects.patch(bucket=bucket, object="python/large.bin", body={"metadata": {"batch": "two"}}), request_id="large")
batch.execute()

objects.delete(bucket=bucket, object="python/large.bin").execute()
after_delete = objects.list(bucket=bucket, prefix="python/").execute()

print(json.dumps({
    "small": {"name": small["name"], "size": small["size"], "metadata": small.get("metadata")},
    "large": {"name": large["name"], "size": large["size"], "chunks": chunks},
    "listed": sorted(item["name"] for item in listed.get("items", [])),
    "downloaded": downloaded.decode("utf-8"),
    "patched": patched,
    "afterDelete": sorted(item["name"] for item in after_delete.get("items", [])),
}))
