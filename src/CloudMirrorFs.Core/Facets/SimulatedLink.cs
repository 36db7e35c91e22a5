namespace CloudMirrorFs.Facets;

/// <summary>
/// A facet decorator that stands in for a slow, failing internet link (<see cref="LinkModel"/>): used by tests and
/// benchmarks in front of a remote facet.
/// </summary>
public sealed class SimulatedLink : FacetDecorator
{
    /// <summary>Wraps <paramref name="inner"/>; <paramref name="seed"/> makes jitter and errors repeatable.</summary>
    public SimulatedLink(IFacet inner, int seed = 0)
        : base(inner)
    {
        Link = new LinkModel(seed);
    }

    /// <summary>The link's behaviour.</summary>
    public LinkModel Link { get; }

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
    protected override ValueTask BeforeAsync(long bytes, bool isWrite, CancellationToken cancellationToken)
        => Link.CrossAsync(bytes, $"facet '{Name}'", cancellationToken);

    /// <inheritdoc />
    protected override void AfterWrite(long bytes)
    {
        lock (Link)
        {
            BytesSent += bytes;
        }
    }
}
