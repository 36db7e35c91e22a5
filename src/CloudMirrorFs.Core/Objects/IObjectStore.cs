namespace CloudMirrorFs.Objects;

/// <summary>
/// A bucket of immutable-by-convention objects: the only operations an object-store remote facet uses, so that any
/// S3-compatible store, Azure Blob, or a folder can hold a volume. Keys are '/'-separated ASCII. A put is durable
/// when it returns. Every implementation runs the same contract test suite.
/// Failures surface as <see cref="MirrorException"/>: <see cref="MirrorError.Unavailable"/> for unreachable or
/// throttled (retry), <see cref="MirrorError.AccessDenied"/> for credentials, <see cref="MirrorError.NotFound"/> for a
/// missing bucket.
/// </summary>
public interface IObjectStore : IAsyncDisposable
{
    /// <summary>What the store is, for messages: "folder /mnt/usb/vol", "s3://bucket/prefix/".</summary>
    string Description { get; }

    /// <summary>Checks the bucket (or folder, or container) is there and usable, creating it when <paramref name="createIfMissing"/>.</summary>
    ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken cancellationToken);

    /// <summary>Stores <paramref name="data"/> under <paramref name="key"/>, replacing any object there.</summary>
    ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>
    /// Stores <paramref name="head"/> followed by <paramref name="body"/> under <paramref name="key"/>: one object, as
    /// <see cref="PutAsync(string, ReadOnlyMemory{byte}, CancellationToken)"/> would store their concatenation. A store
    /// that can write the two parts without joining them (a gathered write) overrides it, to spare a copy of the body.
    /// </summary>
    ValueTask PutAsync(string key, ReadOnlyMemory<byte> head, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        byte[] joined = GC.AllocateUninitializedArray<byte>(head.Length + body.Length);
        head.CopyTo(joined);
        body.CopyTo(joined.AsMemory(head.Length));
        return PutAsync(key, joined, cancellationToken);
    }

    /// <summary>
    /// Stores an object that needs to be durable only once <see cref="SyncAsync"/> has returned: the uploads of a
    /// commit, which no image names until the commit object goes up after them. The object is whole or absent after
    /// a crash, as with any put. By default a plain put, durable at once.
    /// </summary>
    ValueTask PutUnsyncedAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        => PutAsync(key, data, cancellationToken);

    /// <summary><see cref="PutUnsyncedAsync(string, ReadOnlyMemory{byte}, CancellationToken)"/> of <paramref name="head"/> followed by <paramref name="body"/>.</summary>
    ValueTask PutUnsyncedAsync(string key, ReadOnlyMemory<byte> head, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
        => PutAsync(key, head, body, cancellationToken);

    /// <summary>
    /// Returns once every <see cref="PutUnsyncedAsync(string, ReadOnlyMemory{byte}, CancellationToken)"/> that returned
    /// before the call is durable (a folder store flushes the folders those objects went into, once each, instead of
    /// once per object). By default nothing is left to do. A decorator that forwards unsynced puts forwards this too.
    /// </summary>
    ValueTask SyncAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>
    /// Reads an object, or the range [<paramref name="offset"/>, offset + <paramref name="length"/>) of it (clipped
    /// at its end). Null when the object does not exist.
    /// </summary>
    ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken cancellationToken);

    /// <summary>Every object whose key starts with <paramref name="prefix"/>, in ordinal key order.</summary>
    IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>Deletes an object (succeeds when it is already gone).</summary>
    ValueTask DeleteAsync(string key, CancellationToken cancellationToken);

    /// <summary>Deletes several objects (batched where the store can).</summary>
    ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken);
}
