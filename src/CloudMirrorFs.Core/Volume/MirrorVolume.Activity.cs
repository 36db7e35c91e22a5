using CloudMirrorFs.Facets;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Volume;

/// <summary>
/// Power-loss safety between facets: the activity log (<see cref="ActivityLog"/>) names, on stable storage before
/// any facet changes, the regions where changes may be under way; an open after a machine restart compares them
/// again on every other facet. Without it, a page of a local file that reached the disk before the record naming it
/// left the remotes silently older there, for ever.
/// </summary>
public sealed partial class MirrorVolume
{
    /// <summary>Regions at which the trimmer does not wait for its period.</summary>
    internal const int ActivityTrimAt = 1024;

    private ActivityLog? _activity;
    // The count at which a write wakes the trimmer early: doubled past what a trim could not drop, so that writes
    // spread over more regions than that (random writes into a large file) do not run barriers back to back.
    private long _activityWakeAt = ActivityTrimAt;
    private readonly SemaphoreSlim _activityFull = new(0, 1);
    private CancellationTokenSource? _activityStop;
    private Task? _activityTrimmer;

    /// <summary>Regions the activity log names now (0 when the volume has a single facet and keeps no log).</summary>
    public long ActivityRegions => _activity?.Count ?? 0;

    private void EnterActivity(long fileId, long offset, long length)
    {
        if (_activity is { } log && length > 0)
        {
            EnterActivity(log, fileId, offset, length, wholeFile: false);
        }
    }

    private void LeaveActivity(long fileId, long offset, long length)
    {
        if (length > 0)
        {
            _activity?.Leave(fileId, offset, length);
        }
    }

    private void EnterActivityWholeFile(long fileId)
    {
        if (_activity is { } log)
        {
            EnterActivity(log, fileId, 0, 0, wholeFile: true);
        }
    }

    private void LeaveActivityWholeFile(long fileId) => _activity?.LeaveWholeFile(fileId);

    /// <summary>
    /// The log's entry on the write path (no delegate: nothing allocated per write). A log that cannot be written
    /// fails the change before it is made, unless no local facet serves; a region added may wake the trimmer early.
    /// </summary>
    private void EnterActivity(ActivityLog log, long fileId, long offset, long length, bool wholeFile)
    {
        bool added;
        try
        {
            added = wholeFile ? log.EnterWholeFile(fileId) : log.Enter(fileId, offset, length);
        }
        catch (Exception e) when ((e is IOException or UnauthorizedAccessException) && _readyLocals.Length == 0)
        {
            // No local facet serves: the change goes only to a remote, acknowledged once it has committed it, and the
            // log (which guards local facets against the others after a power cut) has nothing to guard. The state
            // folder's disk is often the dead local facet's own (the default layout).
            _log.LogDebug("activity log {Path} not written ({Message}): no local facet serves", log.Path, e.Message);
            added = false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MirrorException(MirrorError.IoError,
                $"the activity log {log.Path} could not be written ({e.Message}); the change was not made. Check the disk under stateDir ({_options.StateDir})", e);
        }
        if (added && log.Count >= Volatile.Read(ref _activityWakeAt) && _activityFull.CurrentCount == 0)
        {
            try
            {
                _activityFull.Release();
            }
            catch (SemaphoreFullException)
            {
                // already signalled
            }
        }
    }

    /// <summary>
    /// Drops the regions whose changes are all on stable storage, with the records naming them: one whole-volume
    /// barrier, then every region idle since it began. Returns how many regions were dropped.
    /// </summary>
    internal async Task<int> TrimActivityAsync(CancellationToken cancellationToken = default)
    {
        if (_activity is not { } log)
        {
            return 0;
        }
        int dropped = await log.TrimAsync(() => SyncAsync(cancellationToken).AsTask()).ConfigureAwait(false);
        Volatile.Write(ref _activityWakeAt, Math.Max(ActivityTrimAt, 2 * log.Count));
        return dropped;
    }

    /// <summary>Keeps the activity log short: a trim every <paramref name="period"/>, or sooner when it names many regions.</summary>
    private void StartActivityTrimmer(TimeSpan period)
    {
        if (_activity is null)
        {
            return;
        }
        _activityStop = new CancellationTokenSource();
        CancellationToken stop = _activityStop.Token;
        _activityTrimmer = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await _activityFull.WaitAsync(period, stop).ConfigureAwait(false);
                    await TrimActivityAsync(stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is MirrorException or IOException or UnauthorizedAccessException)
                {
                    // The regions stay (a later trim drops them); a barrier that fails has logged its own cause.
                    _log.LogWarning("volume {Volume}: trimming the activity log failed: {Message}", _options.Name, e.Message);
                }
            }
        }, CancellationToken.None);
    }

    private async Task StopActivityTrimmerAsync()
    {
        if (_activityTrimmer is null)
        {
            return;
        }
        await _activityStop!.CancelAsync().ConfigureAwait(false);
        try
        {
            await _activityTrimmer.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _activityStop.Dispose();
        _activityTrimmer = null;
    }

    /// <summary>
    /// After a machine restart that the volume did not close before: the blocks of every region the activity log
    /// named, in the files that still exist (clipped to their length on <paramref name="source"/>). Null when the log
    /// was damaged (every block may differ).
    /// </summary>
    private async Task<List<Location>?> ActivityLocationsAsync(FacetSlot source, CancellationToken cancellationToken)
    {
        if (_activity?.Recovered is not { } regions)
        {
            return _activity is null ? [] : null;
        }
        var found = new List<Location>();
        foreach (Location region in regions)
        {
            foreach (long id in ActivityLog.FilesOf(region))
            {
                if (_files.Get(id) is not { Deleted: false, Kind: NodeKind.File } node)
                {
                    continue;
                }
                NodeInfo? info;
                try
                {
                    info = await source.Facet.StatAsync(_files.PathOf(node), cancellationToken).ConfigureAwait(false);
                }
                catch (MirrorException)
                {
                    continue; // unreadable there: its first read or write fails over, and its namespace mark stays
                }
                if (info is { Kind: NodeKind.File } i && _activity.BlocksOf(region, i.Length) is var (first, last))
                {
                    for (long b = first; b <= last; b++)
                    {
                        found.Add(new Location(id, b));
                    }
                }
            }
        }
        return found;
    }
}
