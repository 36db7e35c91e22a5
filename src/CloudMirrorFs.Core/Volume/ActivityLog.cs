using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Volume;

/// <summary>
/// The volume's activity log (DRBD's activity log, md's write-intent bitmap): coarse regions in which a change may be
/// under way, on stable storage <em>before</em> any facet is changed there. The queue's records and intent bits are
/// enough after a killed process (the OS cache survives), but after a power loss a local facet's page may have reached
/// the disk while the record or intent bit that names it had not: nothing would then say that the remotes lack it.
/// After a machine restart, every block of a logged region is compared again.
/// <para>
/// A region is 64 files by id (ids of files made together are consecutive) times 64 MiB of their bytes, so the log
/// is flushed once when a burst of writes moves into new ground, not once per write: a sequential copy flushes it
/// every 64 MiB, a program making small files every 64 files. A length set logs the regions up to the new length (a
/// file regrown to its old length after a shrink differs in the bytes only); a rename over another file logs the
/// moved file whole. A region leaves the log after a
/// whole-volume barrier that began after the last change in it ended (<see cref="TrimAsync"/>): by then the
/// changes are on the disk and so are the records or intent bits that name them.
/// </para>
/// </summary>
internal sealed class ActivityLog : IDisposable
{
    /// <summary>Files per region, as a power of two of consecutive ids.</summary>
    public const int IdShift = 6;

    /// <summary>Bytes of each file per region.</summary>
    public const long RegionBytes = 64L << 20;

    /// <summary>
    /// Region indexes from here on stand for every block of one file: <c>WholeFile + (fileId mod 64)</c> in its
    /// group of 64 ids.
    /// </summary>
    public const long WholeFile = 1L << 48;

    private readonly DirtyMap _map;
    private readonly int _blockShift;
    private readonly Lock _lock = new();
    private readonly Dictionary<Location, Entry> _live = [];
    private long _epoch;

    private sealed class Entry
    {
        public long Stamp;
        public int InFlight;
    }

    private ActivityLog(DirtyMap map, int blockSize)
    {
        _map = map;
        _blockShift = Math.Max(0, System.Numerics.BitOperations.Log2((ulong)Math.Max(1, RegionBytes / blockSize)));
        BlockSize = blockSize;
        // What the previous run left is kept until the open has used it and calls Reset.
        Recovered = map.IsFull ? null : map.Snapshot();
        Damaged = map.CorruptionReport;
    }

    /// <summary>Opens (or creates) the log at <paramref name="path"/>.</summary>
    public static ActivityLog Open(string path, int blockSize) => new(DirtyMap.Open(path), blockSize);

    public int BlockSize { get; }

    /// <summary>The map file.</summary>
    public string Path => _map.Path;

    /// <summary>The regions the previous run left (empty after a clean close); null when the log was damaged (compare everything).</summary>
    public IReadOnlyList<Location>? Recovered { get; private set; }

    /// <summary>Set when the log file was damaged: which file and where.</summary>
    public string? Damaged { get; }

    /// <summary>Regions logged now.</summary>
    public long Count => _map.Count;

    /// <summary>
    /// Logs the regions of [<paramref name="offset"/>, +<paramref name="length"/>) of a file, durably, before the
    /// caller changes any facet there; every call is paired with <see cref="Leave(long, long, long)"/>. Flushes the
    /// log only when a region is new to it, and then returns true.
    /// </summary>
    public bool Enter(long fileId, long offset, long length)
    {
        var (first, last) = RegionsOf(offset, length);
        bool added = false;
        lock (_lock)
        {
            // Every region counted in flight before any I/O: if the log cannot be written, the caller's Leave still
            // pairs each of them.
            for (long r = first; r <= last; r++)
            {
                CountIn(new Location(fileId >> IdShift, r));
            }
            for (long r = first; r <= last; r++)
            {
                added |= _map.Set(new Location(fileId >> IdShift, r));
            }
        }
        if (added)
        {
            _map.Flush();
        }
        return added;
    }

    /// <summary>Logs every block of one file (it replaced another file by a rename); as <see cref="Enter"/>.</summary>
    public bool EnterWholeFile(long fileId)
    {
        bool added;
        lock (_lock)
        {
            Location region = WholeFileRegion(fileId);
            CountIn(region);
            added = _map.Set(region);
        }
        if (added)
        {
            _map.Flush();
        }
        return added;
    }

    /// <summary>The change <see cref="Enter"/> announced has reached every facet it goes to (or failed).</summary>
    public void Leave(long fileId, long offset, long length)
    {
        var (first, last) = RegionsOf(offset, length);
        lock (_lock)
        {
            for (long r = first; r <= last; r++)
            {
                LeaveLocked(new Location(fileId >> IdShift, r));
            }
        }
    }

    /// <summary>Pairs <see cref="EnterWholeFile"/>.</summary>
    public void LeaveWholeFile(long fileId)
    {
        lock (_lock)
        {
            LeaveLocked(WholeFileRegion(fileId));
        }
    }

    private (long First, long Last) RegionsOf(long offset, long length) =>
        (offset / BlockSize >> _blockShift, (offset + Math.Max(1, length) - 1) / BlockSize >> _blockShift);

    private void CountIn(Location region)
    {
        ref Entry? e = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_live, region, out _);
        e ??= new Entry();
        e.InFlight++;
        e.Stamp = _epoch;
    }

    private void LeaveLocked(Location region)
    {
        if (_live.TryGetValue(region, out Entry? e))
        {
            e.InFlight--;
            e.Stamp = _epoch; // a barrier that began before this change ended does not cover it
        }
    }

    /// <summary>
    /// Runs <paramref name="barrier"/> (the volume's whole barrier) and then drops every region whose changes all ended
    /// before it began. Returns how many were dropped. A drop that a power loss undoes only brings a region back.
    /// </summary>
    public async Task<int> TrimAsync(Func<Task> barrier)
    {
        long epoch;
        lock (_lock)
        {
            if (_live.Count == 0)
            {
                return 0;
            }
            epoch = ++_epoch;
        }
        await barrier().ConfigureAwait(false);
        int dropped = 0;
        lock (_lock)
        {
            foreach (var (region, e) in _live.Where(p => p.Value.InFlight == 0 && p.Value.Stamp < epoch).ToList())
            {
                _live.Remove(region);
                _map.Clear(region);
                dropped++;
            }
        }
        return dropped;
    }

    /// <summary>
    /// Empties the log on the disk: after a clean close (everything flushed), or once an open has moved what it named
    /// into the facets' dirty maps (flushed).
    /// </summary>
    public void Reset()
    {
        lock (_lock)
        {
            _live.Clear();
            if (!_map.IsEmpty)
            {
                _map.ClearAll();
            }
            Recovered = [];
        }
    }

    /// <summary>
    /// The blocks a logged region may have changed in one file of <paramref name="length"/> bytes: the file's ids
    /// come from <see cref="FilesOf"/>. Empty when the file holds nothing there.
    /// </summary>
    public (long First, long Last)? BlocksOf(Location region, long length)
    {
        if (length <= 0)
        {
            return null;
        }
        long lastBlock = (length - 1) / BlockSize;
        if (region.Block >= WholeFile)
        {
            return (0, lastBlock);
        }
        long first = region.Block << _blockShift;
        long last = Math.Min(lastBlock, ((region.Block + 1) << _blockShift) - 1);
        return first <= last ? (first, last) : null;
    }

    private static Location WholeFileRegion(long fileId) => new(fileId >> IdShift, WholeFile + (fileId & ((1L << IdShift) - 1)));

    /// <summary>The file ids a region covers.</summary>
    public static IEnumerable<long> FilesOf(Location region)
    {
        long first = region.FileId << IdShift;
        if (region.Block >= WholeFile)
        {
            yield return first + (region.Block - WholeFile);
            yield break;
        }
        for (long id = first; id < first + (1L << IdShift); id++)
        {
            yield return id;
        }
    }

    public void Dispose() => _map.Dispose();
}
