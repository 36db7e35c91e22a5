namespace CloudMirrorFs.Facets;

/// <summary>
/// A facet decorator that stands in for a slow, failing internet link (<see cref="LinkModel"/>): used by tests and
/// benchmarks in front of a remote facet.
/// </summary>
public sealed class SimulatedLink : IFacet
{
    private readonly IFacet _inner;

    /// <summary>Wraps <paramref name="inner"/>; <paramref name="seed"/> makes jitter and errors repeatable.</summary>
    public SimulatedLink(IFacet inner, int seed = 0)
    {
        _inner = inner;
        Link = new LinkModel(seed);
    }

    /// <summary>The link's behaviour.</summary>
    public LinkModel Link { get; }

    /// <summary>The facet behind the link.</summary>
    public IFacet Inner => _inner;

    /// <summary>Round-trip time added to every call.</summary>
    public TimeSpan RoundTrip { get => Link.RoundTrip; set => Link.RoundTrip = value; }

    /// <summary>Up to this much more is added to each call.</summary>
    public TimeSpan Jitter { get => Link.Jitter; set => Link.Jitter = value; }

    /// <summary>Bytes per second through the link; 0 is unlimited.</summary>
    public long BandwidthBytesPerSecond { get => Link.BandwidthBytesPerSecond; set => Link.BandwidthBytesPerSecond = value; }

    /// <summary>While true every call fails as an unreachable remote does.</summary>
    public bool Down { get => Link.Down; set => Link.Down = value; }

    /// <summary>Scheduled outage windows.</summary>
    public IReadOnlyList<(TimeSpan From, TimeSpan To)> Outages { get => Link.Outages; set => Link.Outages = value; }

    /// <summary>Probability that a call fails with an injected I/O error.</summary>
    public double ErrorRate { get => Link.ErrorRate; set => Link.ErrorRate = value; }

    /// <summary>Calls made through the link.</summary>
    public long Calls => Link.Calls;

    /// <summary>Bytes written through the link.</summary>
    public long BytesSent { get; private set; }

    /// <inheritdoc />
    public string Name => _inner.Name;

    /// <inheritdoc />
    public string Kind => _inner.Kind;

    private ValueTask CrossAsync(long bytes, CancellationToken cancellationToken) => Link.CrossAsync(bytes, $"facet '{Name}'", cancellationToken);

    /// <inheritdoc />
    public async ValueTask OpenAsync(CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        await _inner.OpenAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<NodeInfo?> StatAsync(string path, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        return await _inner.StatAsync(path, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<NodeInfo>> ListAsync(string path, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        return await _inner.ListAsync(path, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask CreateFileAsync(FileRef file, UnixFileMode mode, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        await _inner.CreateFileAsync(file, mode, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask CreateDirectoryAsync(string path, UnixFileMode mode, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        await _inner.CreateDirectoryAsync(path, mode, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask CreateSymlinkAsync(FileRef link, string target, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        await _inner.CreateSymlinkAsync(link, target, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<string> ReadLinkAsync(string path, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        return await _inner.ReadLinkAsync(path, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask RenameAsync(string from, string to, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        await _inner.RenameAsync(from, to, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DeleteFileAsync(FileRef file, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        await _inner.DeleteFileAsync(file, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DeleteDirectoryAsync(string path, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        await _inner.DeleteDirectoryAsync(path, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask SetLengthAsync(FileRef file, long length, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        await _inner.SetLengthAsync(file, length, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask SetAttributesAsync(string path, AttributeChange change, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        await _inner.SetAttributesAsync(path, change, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask WriteAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await CrossAsync(data.Length, cancellationToken).ConfigureAwait(false);
        await _inner.WriteAsync(file, offset, data, cancellationToken).ConfigureAwait(false);
        lock (Link)
        {
            BytesSent += data.Length;
        }
    }

    /// <inheritdoc />
    public async ValueTask<int> ReadAsync(FileRef file, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        await CrossAsync(buffer.Length, cancellationToken).ConfigureAwait(false);
        return await _inner.ReadAsync(file, offset, buffer, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        await _inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask CommitAsync(long queueSeq, CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        await _inner.CommitAsync(queueSeq, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<SpaceInfo> GetSpaceAsync(CancellationToken cancellationToken)
    {
        await CrossAsync(0, cancellationToken).ConfigureAwait(false);
        return await _inner.GetSpaceAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _inner.DisposeAsync();
}
