using CloudMirrorFs.Objects;

namespace CloudMirrorFs.Tests.Support;

/// <summary>
/// An object store between a facet and a real one that can hold reads (a slow link: each read whose key
/// <see cref="HoldGets"/> picks waits until <see cref="Release"/>) and refuse writes (<see cref="FailPuts"/>).
/// </summary>
internal sealed class HoldingStore(IObjectStore inner) : IObjectStore
{
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Reads of these keys wait for <see cref="Release"/>.</summary>
    public Func<string, bool>? HoldGets { get; set; }

    /// <summary>Writes of these keys fail as a link that drops them.</summary>
    public Func<string, bool>? FailPuts { get; set; }

    /// <summary>Completes when the first held read has begun.</summary>
    public TaskCompletionSource Waiting { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release() => _released.TrySetResult();

    public string Description => inner.Description;

    public ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken ct) => inner.EnsureReadyAsync(createIfMissing, ct);

    public ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct)
        => FailPuts?.Invoke(key) == true
            ? throw new MirrorException(MirrorError.Unavailable, $"{Description}: {key}: the link dropped it (injected)")
            : inner.PutAsync(key, data, ct);

    public async ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken ct)
    {
        if (HoldGets?.Invoke(key) == true)
        {
            Waiting.TrySetResult();
            await _released.Task.WaitAsync(ct);
        }
        return await inner.GetAsync(key, offset, length, ct);
    }

    public IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

    public ValueTask DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);

    public ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken ct) => inner.DeleteManyAsync(keys, ct);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
