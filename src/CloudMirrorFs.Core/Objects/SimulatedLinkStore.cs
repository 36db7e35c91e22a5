using System.Runtime.CompilerServices;
using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Objects;

/// <summary>An object store behind a simulated internet link (<see cref="LinkModel"/>): every request pays the round trip and its bytes.</summary>
public sealed class SimulatedLinkStore : IObjectStore, IDecorator<IObjectStore>
{
    private readonly IObjectStore _inner;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    public SimulatedLinkStore(IObjectStore inner, LinkModel link)
    {
        _inner = inner;
        Link = link;
    }

    /// <summary>The link's behaviour.</summary>
    public LinkModel Link { get; }

    /// <inheritdoc />
    public string Description => _inner.Description;

    IObjectStore IDecorator<IObjectStore>.Inner => _inner;

    /// <inheritdoc />
    public async ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken cancellationToken)
    {
        await Link.CrossAsync(0, Description, cancellationToken).ConfigureAwait(false);
        await _inner.EnsureReadyAsync(createIfMissing, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await Link.CrossAsync(data.Length, Description, cancellationToken).ConfigureAwait(false);
        await _inner.PutAsync(key, data, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask PutUnsyncedAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await Link.CrossAsync(data.Length, Description, cancellationToken).ConfigureAwait(false);
        await _inner.PutUnsyncedAsync(key, data, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask SyncAsync(CancellationToken cancellationToken) => _inner.SyncAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken cancellationToken)
    {
        byte[]? data = await _inner.GetAsync(key, offset, length, cancellationToken).ConfigureAwait(false);
        await Link.CrossAsync(data?.Length ?? 0, Description, cancellationToken).ConfigureAwait(false);
        return data;
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Link.CrossAsync(0, Description, cancellationToken).ConfigureAwait(false);
        await foreach (ObjectInfo o in _inner.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
        {
            yield return o;
        }
    }

    /// <inheritdoc />
    public async ValueTask DeleteAsync(string key, CancellationToken cancellationToken)
    {
        await Link.CrossAsync(0, Description, cancellationToken).ConfigureAwait(false);
        await _inner.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        await Link.CrossAsync(0, Description, cancellationToken).ConfigureAwait(false);
        await _inner.DeleteManyAsync(keys, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _inner.DisposeAsync();
}
