namespace CloudMirrorFs.Facets;

/// <summary>
/// <c>bandwidthLimit</c> for one facet: a virtual clock spaces the bytes sent so they never exceed the limit. While
/// a resync is running, replication keeps to <c>1 - resyncShare</c> of the limit on a clock of its own, so the resync
/// always has its share; when either runs alone it may use the whole limit.
/// </summary>
public sealed class BandwidthLimiter
{
    private static readonly long ActiveTicks = TimeSpan.FromSeconds(1).Ticks;

    /// <summary>How late a sender may wake without the link losing that time (timer granularity, scheduling).</summary>
    private static readonly TimeSpan Slack = TimeSpan.FromMilliseconds(50);
    private readonly Lock _lock = new();
    private DateTime _linkFreeAt = DateTime.MinValue;
    private DateTime _replicationFreeAt = DateTime.MinValue;
    private DateTime _resyncFreeAt = DateTime.MinValue;
    private long _lastResyncTicks = long.MinValue / 2;
    private long _lastReplicationTicks = long.MinValue / 2;

    /// <summary>Creates a limiter of <paramref name="bytesPerSecond"/>, <paramref name="resyncShare"/> of it kept for a resync.</summary>
    public BandwidthLimiter(long bytesPerSecond, double resyncShare)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(bytesPerSecond, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(resyncShare, 0.0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(resyncShare, 0.95);
        BytesPerSecond = bytesPerSecond;
        ResyncShare = resyncShare;
    }

    /// <summary>The limit.</summary>
    public long BytesPerSecond { get; }

    /// <summary>The fraction kept for a resync while replication is busy.</summary>
    public double ResyncShare { get; }

    private static DateTime Later(DateTime a, DateTime b) => a > b ? a : b;

    /// <summary>Waits for the time <paramref name="bytes"/> take at the limit (and the class's share when both classes are busy).</summary>
    public async ValueTask AcquireAsync(long bytes, bool resync, CancellationToken cancellationToken)
    {
        if (bytes <= 0)
        {
            return;
        }
        TimeSpan wait;
        lock (_lock)
        {
            DateTime now = DateTime.UtcNow;
            DateTime earliest = now - Slack; // a slot left idle by a late wake-up is still usable, up to Slack back
            bool otherBusy;
            if (resync)
            {
                _lastResyncTicks = now.Ticks;
                otherBusy = now.Ticks - _lastReplicationTicks < ActiveTicks;
            }
            else
            {
                _lastReplicationTicks = now.Ticks;
                otherBusy = now.Ticks - _lastResyncTicks < ActiveTicks;
            }
            DateTime finish;
            if (otherBusy)
            {
                // Both busy: each class on its own clock at its share of the limit.
                ref DateTime clock = ref resync ? ref _resyncFreeAt : ref _replicationFreeAt;
                double rate = BytesPerSecond * (resync ? ResyncShare : 1 - ResyncShare);
                finish = Later(earliest, clock) + TimeSpan.FromSeconds(bytes / rate);
                clock = finish;
            }
            else
            {
                // Alone: the whole limit.
                finish = Later(earliest, _linkFreeAt) + TimeSpan.FromSeconds((double)bytes / BytesPerSecond);
                _linkFreeAt = finish;
                if (resync)
                {
                    _resyncFreeAt = finish;
                }
                else
                {
                    _replicationFreeAt = finish;
                }
            }
            // The bytes are on the wire until their slot ends: a sender waits for the end, not the start.
            wait = finish - now;
        }
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
        }
    }
}
