namespace CloudMirrorFs.Facets;

/// <summary>
/// The behaviour of a slow, failing internet link, shared by <see cref="SimulatedLink"/> (in front of a facet) and
/// <see cref="Objects.SimulatedLinkStore"/> (in front of an object store): a round trip and jitter on every call, a
/// bandwidth cap shared by all calls in flight, outages switched by hand or scheduled, and injected errors.
/// </summary>
public sealed class LinkModel
{
    private readonly Lock _lock = new();
    private readonly Random _random;
    private DateTime _linkFreeAt = DateTime.MinValue;
    private long _calls;
    private long _bytes;

    /// <summary>A link; <paramref name="seed"/> makes jitter and errors repeatable.</summary>
    public LinkModel(int seed = 0) => _random = new Random(seed);

    /// <summary>Round-trip time added to every call.</summary>
    public TimeSpan RoundTrip { get; set; }

    /// <summary>Up to this much more (uniformly drawn) is added to each call.</summary>
    public TimeSpan Jitter { get; set; }

    /// <summary>Bytes per second through the link; 0 is unlimited.</summary>
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

    /// <summary>Bytes carried (both ways).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

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

    /// <summary>One call across the link carrying <paramref name="bytes"/>: waits as the link would, or fails as it would.</summary>
    public async ValueTask CrossAsync(long bytes, string what, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _calls);
        if (IsDown)
        {
            await Task.Delay(RoundTrip / 2, cancellationToken).ConfigureAwait(false);
            throw new MirrorException(MirrorError.Unavailable, $"{what}: link down (simulated)");
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
                wait += _linkFreeAt - now;
            }
        }
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
        }
        if (IsDown)
        {
            throw new MirrorException(MirrorError.Unavailable, $"{what}: link dropped mid-call (simulated)");
        }
        bool fail;
        lock (_lock)
        {
            fail = ErrorRate > 0 && _random.NextDouble() < ErrorRate;
        }
        if (fail)
        {
            throw new MirrorException(MirrorError.IoError, $"{what}: injected error (simulated)");
        }
        Interlocked.Add(ref _bytes, bytes);
    }
}
