namespace CloudMirrorFs.Facets;

/// <summary>
/// A facet decorator that stands in for a slow, failing internet link: a round-trip latency with jitter on every
/// call, a bandwidth cap shared by all calls in flight, outages (scheduled or switched by hand) and injected errors.
/// Tests and benchmarks put it in front of a remote facet.
/// </summary>
public sealed class SimulatedLink : IFacet
{
    private readonly IFacet _inner;
    private readonly Lock _lock = new();
    private readonly Random _random;
    private DateTime _linkFreeAt = DateTime.MinValue;
    private long _calls;

    /// <summary>Wraps <paramref name="inner"/>; <paramref name="seed"/> makes jitter and errors repeatable.</summary>
    public SimulatedLink(IFacet inner, int seed = 0)
    {
        _inner = inner;
        _random = new Random(seed);
    }

    /// <summary>The facet behind the link.</summary>
    public IFacet Inner => _inner;

    /// <summary>Round-trip time added to every call.</summary>
    public TimeSpan RoundTrip { get; set; }

    /// <summary>Up to this much more (uniformly drawn) is added to each call.</summary>
    public TimeSpan Jitter { get; set; }

    /// <summary>Bytes per second through the link (data written and read); 0 is unlimited.</summary>
    public long BandwidthBytesPerSecond { get; set; }

    /// <summary>While true every call fails as an unreachable remote does.</summary>
    public bool Down { get; set; }

    /// <summary>Windows of time, relative to <see cref="ScheduleStart"/>, during which the link is down.</summary>
    public IReadOnlyList<(TimeSpan From, TimeSpan To)> Outages { get; set; } = [];

    /// <summary>When the outage schedule starts.</summary>
    public DateTime ScheduleStart { get; set; } = DateTime.UtcNow;

    /// <summary>Probability (0..1) that a call fails with an injected I/O error after the round trip.</summary>
    public double ErrorRate { get; set; }

    /// <summary>Calls made through the link.</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Bytes written through the link.</summary>
    public long BytesSent { get; private set; }

    /// <inheritdoc />
    public string Name => _inner.Name;

    /// <inheritdoc />
    public string Kind => _inner.Kind;

    /// <summary>True when the link is down now (by hand or by schedule).</summary>
    public bool IsDown
    {
        get
        {
            if (Down)
            {
                return true;
            }
            TimeSpan t = DateTime.UtcNow - ScheduleStart;
            foreach (var (from, to) in Outages)
            {
                if (t >= from && t < to)
                {
                    return true;
                }
            }
            return false;
        }
    }

    private async ValueTask CrossAsync(long bytes, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _calls);
        if (IsDown)
        {
            await Task.Delay(Half(RoundTrip), cancellationToken).ConfigureAwait(false);
            throw new MirrorException(MirrorError.Unavailable, $"facet '{Name}': link down (simulated)");
        }
        TimeSpan wait = RoundTrip;
        lock (_lock)
        {
            if (Jitter > TimeSpan.Zero)
            {
                wait += TimeSpan.FromTicks((long)(_random.NextDouble() * Jitter.Ticks));
            }
            if (BandwidthBytesPerSecond > 0 && bytes > 0)
            {
                // Calls share the link: each one's bytes occupy it after the bytes already on it.
                DateTime now = DateTime.UtcNow;
                DateTime start = _linkFreeAt > now ? _linkFreeAt : now;
                _linkFreeAt = start + TimeSpan.FromSeconds((double)bytes / BandwidthBytesPerSecond);
                TimeSpan transfer = _linkFreeAt - now;
                wait += transfer;
            }
        }
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
        }
        if (IsDown)
        {
            throw new MirrorException(MirrorError.Unavailable, $"facet '{Name}': link dropped mid-call (simulated)");
        }
        bool fail;
        lock (_lock)
        {
            fail = ErrorRate > 0 && _random.NextDouble() < ErrorRate;
        }
        if (fail)
        {
            throw new MirrorException(MirrorError.IoError, $"facet '{Name}': injected error (simulated)");
        }
    }

    private static TimeSpan Half(TimeSpan t) => t / 2;

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
        lock (_lock)
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
