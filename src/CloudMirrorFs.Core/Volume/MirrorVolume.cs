using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Storage;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Volume;

/// <summary>
/// The mirror volume manager of seed 000. Every write goes synchronously to every Synchronised local facet (in
/// parallel) and into the transaction queue, and is acknowledged then, without waiting for any remote facet.
/// Reads are served by a local facet, balanced across the Synchronised ones, with read repair.
/// Split by concern: <c>MirrorVolume.Namespace.cs</c> (names), <c>MirrorVolume.Data.cs</c> (bytes),
/// <c>MirrorVolume.Open.cs</c> (opening, recovery and closing).
/// </summary>
public sealed partial class MirrorVolume : IAsyncDisposable
{
    private readonly VolumeOptions _options;
    private readonly ILogger _log;
    private readonly FacetSlot[] _slots;
    private readonly SemaphoreSlim _namespaceGate = new(1, 1);
    private readonly Lock _sequencer = new();
    private readonly Lock _stateLock = new();
    private bool _statesUnsaved;
    private readonly SemaphoreSlim _barrierGate = new(1, 1);
    private readonly ManualResetEventSlim _spaceFreed = new(false);
    private FileTable _files = null!;
    private TransactionQueue? _queue;
    private FileStream? _lockFile;
    private Func<FacetOptions, IFacet>? _facetFactory;
    private volatile FacetSlot[] _readyLocals = [];
    private volatile FacetSlot[] _remotes = [];
    private volatile FacetSlot[] _idleLocals = [];
    private long _barrierTicket;
    private long _barrierCompleted;
    private readonly SemaphoreSlim _recordsGate = new(1, 1);
    private long _recordsTicket;
    private long _recordsCompleted;
    private int _readRotor;
    private int _disposed;

    private MirrorVolume(VolumeOptions options, FacetSlot[] slots, ILogger log)
    {
        _options = options;
        _slots = slots;
        _log = log;
    }

    /// <summary>The options the volume was opened with.</summary>
    public VolumeOptions Options => _options;

    /// <summary>Bytes per block.</summary>
    public int BlockSize => _options.BlockSize;

    /// <summary>What replaying the queue found at open (corruptions are also logged).</summary>
    public QueueRecovery? QueueRecovery { get; private set; }

    /// <summary>The id of the root directory.</summary>
    public static long RootId => FileTable.RootId;

    /// <summary>The state of a facet by name.</summary>
    public FacetState GetFacetState(string facetName) => Slot(facetName).State;

    /// <summary>The number of locations a facet's dirty map names.</summary>
    public long GetDirtyCount(string facetName) => Slot(facetName).Dirty.Count;

    /// <summary>A copy of a facet's dirty map: the locations it lacks, and whether a full or namespace resync is needed.</summary>
    public (IReadOnlyList<Location> Locations, bool Full, bool Namespace) GetDirtyMap(string facetName)
    {
        DirtyMap d = Slot(facetName).Dirty;
        return (d.Snapshot(), d.IsFull, d.NamespaceDirty);
    }

    /// <summary>The facet instance configured under a name.</summary>
    public IFacet GetFacet(string facetName) => Slot(facetName).Facet;

    /// <summary>The volume's status: per facet state, backlog and dirty map size.</summary>
    public VolumeStatus GetStatus()
    {
        var cursors = _queue?.Cursors().ToDictionary(c => c.Name) ?? [];
        DateTime now = DateTime.UtcNow;
        return new VolumeStatus
        {
            Name = _options.Name,
            StateDir = _options.StateDir,
            BlockSize = _options.BlockSize,
            QueueMemoryBytes = _queue?.MemoryBytes ?? 0,
            QueueDiskBytes = _queue?.DiskBytes ?? 0,
            QueueMemoryLimit = _options.Queue.MemoryLimit,
            QueueDiskLimit = _options.Queue.DiskLimit,
            Facets = [.. _slots.Select(s =>
            {
                cursors.TryGetValue(s.Name, out QueueCursorInfo? c);
                return new FacetStatus
                {
                    Name = s.Name,
                    Kind = s.Options.Kind,
                    Role = s.Role,
                    State = s.State,
                    QueuedEntries = c?.Count ?? 0,
                    QueuedBytes = c?.Bytes ?? 0,
                    OldestUnreplicatedAge = c?.OldestEnqueuedUtc is { } t ? now - t : null,
                    DirtyLocations = s.Dirty.IsFull ? -1 : s.Dirty.Count,
                    ResyncProgress = s.IsLocal && s.State == FacetState.BeingSynchronised ? LocalResyncProgress(s.Name) : null,
                    Held = s.Held,
                    Reason = s.Held && s.Reason?.StartsWith("held", StringComparison.Ordinal) != true ? $"{HeldReason(s)} ({s.Reason})" : s.Reason,
                };
            })],
        };
    }

    /// <summary>The queue's view for one remote facet (head, tail, count, bytes).</summary>
    public QueueCursorInfo? GetQueueCursor(string facetName)
        => _queue is not null && Slot(facetName).Role == FacetRole.Remote ? _queue.CursorInfo(facetName) : null;

    /// <summary>Reads queued transactions for a remote facet, as copies that outlive the queue's entries (for tests and inspection).</summary>
    public IReadOnlyList<Transaction> ReadQueue(string facetName, long afterSeq, int maxRecords, long maxBytes)
    {
        if (_queue is null)
        {
            return [];
        }
        using QueueBatch batch = _queue.Read(facetName, afterSeq, maxRecords, maxBytes);
        return [.. batch.Select(t => t.Detached())];
    }

    private FacetSlot Slot(string name)
        => _slots.FirstOrDefault(s => s.Name == name) ?? throw new ArgumentException($"no facet named '{name}' in volume '{_options.Name}'", nameof(name));

    /// <summary>Moves a facet to a new state, persists it, and refreshes the ready lists.</summary>
    private void SetState(FacetSlot slot, FacetState state, string? reason)
    {
        lock (_stateLock)
        {
            if (slot.State == state && slot.Reason == reason)
            {
                return;
            }
            FacetState old = slot.State;
            slot.State = state;
            slot.Reason = reason;
            RefreshLists();
            SaveStatesLocked();
            if (state == FacetState.Synchronised)
            {
                _log.LogInformation("facet {Facet}: {Old} -> {New}", slot.Name, old, state);
            }
            else if (old == state)
            {
                _log.LogWarning("facet {Facet}: still {State} ({Reason})", slot.Name, state, reason); // a new reason only
            }
            else
            {
                _log.LogWarning("facet {Facet}: {Old} -> {New} ({Reason})", slot.Name, old, state, reason);
            }
        }
    }

    /// <summary>
    /// Persists the facet states. A failure (the state folder's disk full, most often) is logged, not thrown: the
    /// states stay right in memory, where the volume runs from, and the next change or the close saves them again. A
    /// throw here would end whatever noticed the change (a replicator handling a refusal, a writer's failover).
    /// </summary>
    private void SaveStatesLocked()
    {
        try
        {
            FacetStateStore.Save(_options.StateDir, _slots);
            if (_statesUnsaved)
            {
                _log.LogInformation("facet states saved again to {Path}", FacetStateStore.FilePath(_options.StateDir));
                _statesUnsaved = false;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (!_statesUnsaved)
            {
                _log.LogError("could not save the facet states to {Path}: {Message}; they are kept in memory and saved at the next change or at unmount",
                    FacetStateStore.FilePath(_options.StateDir), MirrorException.From(e, FacetStateStore.FilePath(_options.StateDir)).Message);
                _statesUnsaved = true;
            }
        }
    }

    private void RefreshLists()
    {
        _readyLocals = [.. _slots.Where(s => s.IsLocal && s.State == FacetState.Synchronised)];
        _idleLocals = [.. _slots.Where(s => s.IsLocal && s.State != FacetState.Synchronised)];
        _syncingLocals = [.. _slots.Where(s => s.IsLocal && s.State == FacetState.BeingSynchronised)];
        _remotes = [.. _slots.Where(s => !s.IsLocal)];
    }

    private void MarkNamespaceOnIdleLocals()
    {
        foreach (FacetSlot s in _idleLocals)
        {
            if (s.State != FacetState.BeingSynchronised) // a facet being resynchronised takes namespace changes itself
            {
                MarkNamespaceDirty(s);
            }
        }
    }

    /// <summary>
    /// Takes a local facet that failed an operation offline: NotSynchronised until a resync, its dirty map marked
    /// so the resync knows the tree may differ. The caller records the locations it missed. Never fails: the disk that
    /// failed often holds the state folder too (the default layout), and a read or write the remotes can serve must
    /// not fail because that mark cannot reach its file; it stays marked in memory, and the next barrier writes it.
    /// </summary>
    private void FailLocal(FacetSlot slot, Exception error)
    {
        try
        {
            slot.Dirty.MarkNamespaceDirty();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogError("facet {Facet}: its dirty map could not be written ({Message}); marked in memory, written at the next barrier", slot.Name, e.Message);
        }
        SetState(slot, FacetState.NotSynchronised, $"taken offline after a failure: {error.Message}");
        if (_backgroundWork)
        {
            StartLocalResync(slot);
        }
    }
}
