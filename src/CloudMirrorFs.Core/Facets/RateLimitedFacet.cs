namespace CloudMirrorFs.Facets;

/// <summary>A facet whose incoming bytes (replication and resync) are held to its <c>bandwidthLimit</c>.</summary>
public sealed class RateLimitedFacet : FacetDecorator
{
    /// <summary>Wraps <paramref name="inner"/> behind <paramref name="limiter"/>.</summary>
    public RateLimitedFacet(IFacet inner, BandwidthLimiter limiter)
        : base(inner)
    {
        Limiter = limiter;
    }

    /// <summary>The limit applied.</summary>
    public BandwidthLimiter Limiter { get; }

    /// <inheritdoc />
    protected override ValueTask BeforeAsync(long bytes, bool isWrite, CancellationToken cancellationToken)
        => isWrite ? Limiter.AcquireAsync(bytes, TrafficClass.IsResync, cancellationToken) : ValueTask.CompletedTask;
}
