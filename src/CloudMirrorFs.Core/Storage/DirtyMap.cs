using System.Buffers.Binary;

namespace CloudMirrorFs.Storage;

/// <summary>
/// A sparse, persistent bitmap of locations: which (file, block) pairs a facet lacks. The seed's "bitmap for fast
/// synchronisation"; the two-site mode's OOS, MOOS and MOS maps are DirtyMaps too.
/// <para>
/// Persistence is a write-intent log: the first time a bit is set, one 29-byte record is appended to the map file
/// with a single write (so it survives SIGKILL once <see cref="Set"/> returns; <see cref="Flush"/> makes it survive
/// power loss). Setting a bit that is already set costs a dictionary probe and no I/O. Clears are appended too, and
/// the file is rewritten compactly when the log grows much larger than the live set.
/// </para>
/// <para>
/// Besides block bits the map carries two whole-volume marks: <see cref="IsFull"/> (every location may differ: a
/// full resync is needed) and <see cref="NamespaceDirty"/> (the facet's tree of names may differ from the volume's:
/// a namespace reconciliation is needed).
/// </para>
/// </summary>
public sealed class DirtyMap : IDisposable
{
    private const int HeaderSize = 16;
    private const int RecordSize = 29;
    private const byte OpSet = 1, OpClear = 2, OpFull = 3, OpNamespace = 4;
    private static ReadOnlySpan<byte> Magic => "CMFSDMAP"u8;

    private readonly Lock _lock = new();
    private readonly Dictionary<(long FileId, long Word), ulong> _words = [];
    private FileStream _file;
    private readonly byte[] _record = new byte[RecordSize];
    private byte[]? _rangeRecords; // SetRange's records, SetRangeChunk of them at most (under the lock)
    private List<long>? _rangeChunk;
    private long _count;
    private long _logRecords;
    private bool _disposed;

    private DirtyMap(string path, FileStream file)
    {
        Path = path;
        _file = file;
    }

    // Marks (set, full, namespace) appended, and how many of them a completed flush has covered: a barrier with no new
    // mark costs no fsync. Clears are not counted: a clear lost to a power cut only brings a bit back, which costs a
    // block comparison at the next resync and never a missed location.
    private long _marksAppended;
    private long _marksFlushed;

    // Marks set in memory whose append failed: written again by the next Set of them and by every Flush.
    private HashSet<Location>? _unpersisted;

    // Cleared in memory by ClearLater, still set in the file until CommitClears appends their clears.
    private HashSet<Location>? _clearsPending;

    // ClearVolumeMarksLater: the marks are clear in memory, still in the file until CommitClears rewrites it.
    private bool _fullOnDisk;
    private bool _namespaceOnDisk;
    private bool _folderFlushOwed;
    private bool _fullUnpersisted;
    private bool _namespaceUnpersisted;

    // Open watches (Watch): each notes every location marked while it is open.
    private List<HashSet<Location>>? _watches;

    /// <summary>The map file.</summary>
    public string Path { get; }

    /// <summary>Set when the map file was damaged: a description naming the file and offset. The map is then <see cref="IsFull"/>.</summary>
    public string? CorruptionReport { get; private set; }

    /// <summary>Every location may differ: a full resync is needed.</summary>
    public bool IsFull { get; private set; }

    /// <summary>The tree of names may differ: a namespace reconciliation is needed before copying blocks.</summary>
    public bool NamespaceDirty { get; private set; }

    /// <summary>Number of locations set.</summary>
    public long Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>True when nothing is marked: no block, no namespace mark, not full.</summary>
    public bool IsEmpty
    {
        get
        {
            lock (_lock)
            {
                return _count == 0 && !IsFull && !NamespaceDirty;
            }
        }
    }

    /// <summary>Opens (or creates) the map at <paramref name="path"/>, replaying its log.</summary>
    public static DirtyMap Open(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
        var map = new DirtyMap(path, file);
        try
        {
            map.Load();
        }
        catch
        {
            file.Dispose();
            throw;
        }
        return map;
    }

    /// <summary>
    /// Marks a location; returns true when it was not marked before (or its earlier append had failed and this one
    /// wrote it). Durable against process death on return. When the append fails (a full disk, an I/O error) the
    /// location is marked in memory all the same, so this run still acts on it, and the error goes to the caller; the
    /// next <see cref="Set"/> of it, and every <see cref="Flush"/>, write it again until one gets it to the file.
    /// </summary>
    public bool Set(Location location)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            (bool marked, bool append) = MarkLocked(location);
            if (append)
            {
                try
                {
                    AppendOrCut(OpSet, location.FileId, location.Block);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    (_unpersisted ??= []).Add(location);
                    throw;
                }
                _unpersisted?.Remove(location);
            }
            return marked;
        }
    }

    /// <summary>
    /// Marks every block of <paramref name="fileId"/> from <paramref name="firstBlock"/> to <paramref name="lastBlock"/>
    /// inclusive, as <see cref="Set"/> would each, writing the marks it appends together (one write for up to
    /// <see cref="SetRangeChunk"/> of them: a 1 MiB write of 256 KiB blocks made four); returns for how many
    /// <see cref="Set"/> would have returned true. Durable against process death on return. When a write fails, every
    /// location of the range is still marked in memory and written again as <see cref="Set"/> does (by the next
    /// <see cref="Set"/> of it and every <see cref="Flush"/>), and the first error goes to the caller.
    /// </summary>
    public long SetRange(long fileId, long firstBlock, long lastBlock)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long marked = 0;
            Exception? failed = null;
            List<long> chunk = _rangeChunk ??= new List<long>(SetRangeChunk);
            chunk.Clear();
            for (long b = firstBlock; b <= lastBlock; b++)
            {
                (bool newly, bool append) = MarkLocked(new Location(fileId, b));
                marked += newly ? 1 : 0;
                if (!append)
                {
                    continue;
                }
                if (failed is not null)
                {
                    (_unpersisted ??= []).Add(new Location(fileId, b));
                    continue;
                }
                chunk.Add(b);
                if (chunk.Count == SetRangeChunk)
                {
                    failed = AppendSetsLocked(fileId, chunk);
                }
            }
            if (failed is null && chunk.Count > 0)
            {
                failed = AppendSetsLocked(fileId, chunk);
            }
            if (failed is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed);
            }
            return marked;
        }
    }

    /// <summary>Set records <see cref="SetRange"/> writes at once, at most: its buffer stays small whatever the range.</summary>
    internal const int SetRangeChunk = 1024;

    /// <summary>
    /// Appends set records for <paramref name="blocks"/> of <paramref name="fileId"/> in one write, and empties the list.
    /// When the write fails, of any kind, they are left unpersisted, to be written again; an I/O failure is returned
    /// (the range goes on being marked in memory), any other is thrown. Nothing extra on the write path when it succeeds.
    /// </summary>
    private IOException? AppendSetsLocked(long fileId, List<long> blocks)
    {
        try
        {
            AppendSetsOrCut(fileId, blocks);
        }
        catch (Exception e)
        {
            _unpersisted ??= [];
            foreach (long b in blocks)
            {
                _unpersisted.Add(new Location(fileId, b));
            }
            blocks.Clear();
            if (e is not (IOException or UnauthorizedAccessException))
            {
                throw;
            }
            return e as IOException ?? new IOException(e.Message, e);
        }
        if (_unpersisted is { Count: > 0 })
        {
            foreach (long b in blocks)
            {
                _unpersisted.Remove(new Location(fileId, b)); // written again now, after an earlier failure
            }
        }
        blocks.Clear();
        return null;
    }

    /// <summary>
    /// Marks <paramref name="location"/> in memory (and in every open watch). Returns whether <see cref="Set"/> reports
    /// it newly marked (not marked before, or marked but its append had failed), and whether its set record must be
    /// appended: not when a pending clear of it is merely taken back, since its set is then still the last word on it
    /// in the file.
    /// </summary>
    private (bool Marked, bool Append) MarkLocked(Location location)
    {
        if (_watches is not null)
        {
            foreach (HashSet<Location> w in _watches)
            {
                w.Add(location);
            }
        }
        ref ulong bits = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_words, (location.FileId, location.Block >> 6), out _);
        ulong bit = 1UL << (int)(location.Block & 63);
        if ((bits & bit) != 0)
        {
            bool again = _unpersisted is not null && _unpersisted.Contains(location);
            return (again, again);
        }
        bits |= bit;
        _count++;
        return (true, _clearsPending is null || !_clearsPending.Remove(location));
    }

    /// <summary>True when the location is marked (or the map is full).</summary>
    public bool Contains(Location location)
    {
        lock (_lock)
        {
            if (IsFull)
            {
                return true;
            }
            return _words.TryGetValue((location.FileId, location.Block >> 6), out ulong bits)
                && (bits & (1UL << (int)(location.Block & 63))) != 0;
        }
    }

    /// <summary>Unmarks a location; returns true when it was marked.</summary>
    public bool Clear(Location location)
    {
        lock (_lock)
        {
            if (!UnmarkLocked(location))
            {
                return false;
            }
            _unpersisted?.Remove(location); // never on the disk: nothing to clear there, and a clear lost costs nothing
            Append(OpClear, location.FileId, location.Block);
            MaybeCompact();
            return true;
        }
    }

    /// <summary>
    /// Unmarks a location now, in memory (what the running volume sees), and in the file only at the next
    /// <see cref="CommitClears"/>: for a caller that copied the block into a facet and has not flushed the facet yet.
    /// A power cut before the flush then leaves the location marked, not the block missing with nothing naming it.
    /// </summary>
    public bool ClearLater(Location location)
    {
        lock (_lock)
        {
            if (!UnmarkLocked(location))
            {
                return false;
            }
            if (_unpersisted?.Remove(location) != true)
            {
                (_clearsPending ??= []).Add(location); // a set that never reached the file needs no clear there
            }
            return true;
        }
    }

    /// <summary>Clears the bit in memory; false when it was not set.</summary>
    private bool UnmarkLocked(Location location)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long word = location.Block >> 6;
        ulong bit = 1UL << (int)(location.Block & 63);
        if (!_words.TryGetValue((location.FileId, word), out ulong bits) || (bits & bit) == 0)
        {
            return false;
        }
        bits &= ~bit;
        if (bits == 0)
        {
            _words.Remove((location.FileId, word));
        }
        else
        {
            _words[(location.FileId, word)] = bits;
        }
        _count--;
        return true;
    }

    /// <summary>Writes the clears <see cref="ClearLater"/> held back, once the facet they are about has been flushed.</summary>
    public void CommitClears()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            if (_clearsPending is { Count: > 0 } pending)
            {
                foreach (Location l in pending)
                {
                    Append(OpClear, l.FileId, l.Block);
                }
                _clearsPending = null;
            }
            if (_fullOnDisk || _namespaceOnDisk)
            {
                _fullOnDisk = _namespaceOnDisk = false;
                RewriteLocked(); // the log has no record that clears a volume mark: the file is written without them
                return;
            }
            MaybeCompact();
        }
    }

    /// <summary>Marks the whole volume as possibly different (full resync).</summary>
    public void MarkFull()
    {
        lock (_lock)
        {
            if (!IsFull || _fullUnpersisted)
            {
                IsFull = true;
                _fullUnpersisted = true;
                AppendOrCut(OpFull, 0, 0);
                _fullUnpersisted = false;
            }
        }
    }

    /// <summary>Marks the tree of names as possibly different.</summary>
    public void MarkNamespaceDirty()
    {
        lock (_lock)
        {
            if (!NamespaceDirty || _namespaceUnpersisted)
            {
                NamespaceDirty = true;
                _namespaceUnpersisted = true;
                AppendOrCut(OpNamespace, 0, 0);
                _namespaceUnpersisted = false;
            }
        }
    }

    /// <summary>
    /// Starts noting every location marked from now on, whether it was marked already or not. A caller that copies the
    /// marked blocks and clears each once the copy is durable clears only those <see cref="MarkWatch.Marked"/> says
    /// were not marked meanwhile: a mark set again while the copy ran names a change the copy may have read before it
    /// was made (a queue's release marks what its records held, and the location was still marked), and clearing it
    /// would forget that change.
    /// </summary>
    public MarkWatch Watch()
    {
        var noted = new HashSet<Location>();
        lock (_lock)
        {
            (_watches ??= []).Add(noted);
        }
        return new MarkWatch(this, noted);
    }

    /// <summary>The locations marked while a <see cref="Watch"/> is open.</summary>
    public sealed class MarkWatch : IDisposable
    {
        private readonly DirtyMap _map;
        private readonly HashSet<Location> _noted;

        internal MarkWatch(DirtyMap map, HashSet<Location> noted)
        {
            _map = map;
            _noted = noted;
        }

        /// <summary>True when <paramref name="location"/> was marked since the watch began.</summary>
        public bool Marked(Location location)
        {
            lock (_map._lock)
            {
                return _noted.Contains(location);
            }
        }

        /// <summary>
        /// Clears <paramref name="location"/> unless it was marked since the watch began, as one step: a mark set
        /// between a look and a clear would be erased with it. Returns true when it cleared it.
        /// </summary>
        public bool ClearUnlessMarked(Location location)
        {
            lock (_map._lock)
            {
                return !_noted.Contains(location) && _map.Clear(location);
            }
        }

        /// <summary>Stops noting.</summary>
        public void Dispose()
        {
            lock (_map._lock)
            {
                if (_map._watches is { } w && w.Remove(_noted) && w.Count == 0)
                {
                    _map._watches = null;
                }
            }
        }
    }

    /// <summary>Adds every mark of <paramref name="other"/> to this map.</summary>
    public void UnionWith(DirtyMap other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.IsFull)
        {
            MarkFull();
        }
        if (other.NamespaceDirty)
        {
            MarkNamespaceDirty();
        }
        foreach (Location l in other.Snapshot())
        {
            Set(l);
        }
    }

    /// <summary>Empties the map (after a completed resync) and rewrites its file.</summary>
    public void ClearAll()
    {
        lock (_lock)
        {
            _words.Clear();
            _clearsPending = null;
            _fullOnDisk = _namespaceOnDisk = false;
            _count = 0;
            IsFull = false;
            NamespaceDirty = false;
            CorruptionReport = null;
            RewriteLocked();
        }
    }

    /// <summary>
    /// Clears the whole-volume marks in memory now, and in the file only at the next <see cref="CommitClears"/>: for a
    /// resync that reconciled the facet's names and has not flushed the facet yet (a power cut before the flush then
    /// leaves the marks, not names missing with nothing saying so).
    /// </summary>
    public void ClearVolumeMarksLater()
    {
        lock (_lock)
        {
            _fullOnDisk |= IsFull;
            _namespaceOnDisk |= NamespaceDirty;
            IsFull = false;
            NamespaceDirty = false;
            CorruptionReport = null;
        }
    }

    /// <summary>Clears the whole-volume marks once a resync has handled them.</summary>
    public void ClearVolumeMarks()
    {
        lock (_lock)
        {
            IsFull = false;
            NamespaceDirty = false;
            CorruptionReport = null;
            _fullOnDisk = _namespaceOnDisk = false;
            RewriteLocked();
        }
    }

    /// <summary>The marked locations, ordered by file then block.</summary>
    public List<Location> Snapshot()
    {
        lock (_lock)
        {
            var list = new List<Location>((int)Math.Min(_count, int.MaxValue / 2));
            foreach (var ((fileId, word), bits) in _words)
            {
                ulong b = bits;
                while (b != 0)
                {
                    int i = System.Numerics.BitOperations.TrailingZeroCount(b);
                    list.Add(new Location(fileId, (word << 6) + i));
                    b &= b - 1;
                }
            }
            list.Sort((x, y) => x.FileId != y.FileId ? x.FileId.CompareTo(y.FileId) : x.Block.CompareTo(y.Block));
            return list;
        }
    }

    /// <summary>How many marks (set, full, namespace) have been appended: the number of the newest one.</summary>
    public long MarksAppended
    {
        get
        {
            lock (_lock)
            {
                return _marksAppended;
            }
        }
    }

    /// <summary>True when a completed <see cref="Flush"/> covered every mark up to number <paramref name="mark"/>.</summary>
    public bool FlushedThrough(long mark)
    {
        lock (_lock)
        {
            return _disposed || _marksFlushed >= mark;
        }
    }

    /// <summary>True when a mark was set since the last completed <see cref="Flush"/> (a barrier has work to do).</summary>
    public bool HasUnflushedMarks
    {
        get
        {
            lock (_lock)
            {
                return !_disposed && (_marksFlushed < _marksAppended || _unpersisted is { Count: > 0 } || _fullUnpersisted || _namespaceUnpersisted || _folderFlushOwed);
            }
        }
    }

    /// <summary>
    /// The barrier: returns once every mark set so far is on stable storage. The fsync runs outside the map's lock, so
    /// writers marking bits meanwhile do not wait for the disk.
    /// </summary>
    public void Flush()
    {
        FileStream file;
        long target;
        lock (_lock)
        {
            if (!_disposed)
            {
                AppendUnpersistedLocked(); // a barrier that cannot write them fails, rather than return without them
                FlushOwedFolderLocked();
            }
            target = _marksAppended;
            if (_disposed || _marksFlushed >= target)
            {
                return;
            }
            file = _file;
        }
        try
        {
            file.Flush(flushToDisk: true);
        }
        catch (ObjectDisposedException)
        {
            // Replaced by a rewrite meanwhile (which flushed the whole live set to disk, and its folder unless that
            // failed: owed then, and flushed below), or the map was closed.
        }
        lock (_lock)
        {
            if (!_disposed)
            {
                FlushOwedFolderLocked();
            }
            _marksFlushed = Math.Max(_marksFlushed, target);
        }
    }

    /// <summary>The flush of the map's folder that a rewrite could not do: retried before any mark counts as flushed.</summary>
    private void FlushOwedFolderLocked()
    {
        if (_folderFlushOwed)
        {
            AtomicFile.SyncDirectory(System.IO.Path.GetDirectoryName(Path)!);
            _folderFlushOwed = false;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            try
            {
                AppendUnpersistedLocked(); // a last try: the disk may have room again
                if (_marksFlushed < _marksAppended)
                {
                    // A barrier racing the close treats a closed map as flushed: make that true.
                    _file.Flush(flushToDisk: true);
                    _marksFlushed = _marksAppended;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Closing never threw before: a failed disk shows at the next open's replay instead.
            }
            finally
            {
                _file.Dispose();
            }
        }
    }

    private void Append(byte op, long fileId, long block)
    {
        Encode(_record, op, fileId, block);
        _file.Write(_record);
        _logRecords++;
        if (op != OpClear)
        {
            _marksAppended++;
        }
    }

    private void AppendUnpersistedLocked()
    {
        if (_fullUnpersisted)
        {
            AppendOrCut(OpFull, 0, 0);
            _fullUnpersisted = false;
        }
        if (_namespaceUnpersisted)
        {
            AppendOrCut(OpNamespace, 0, 0);
            _namespaceUnpersisted = false;
        }
        if (_unpersisted is { Count: > 0 })
        {
            foreach (Location l in _unpersisted.ToList())
            {
                AppendOrCut(OpSet, l.FileId, l.Block);
                _unpersisted.Remove(l);
            }
        }
    }

    /// <summary>Appends a set record for each of <paramref name="blocks"/> of <paramref name="fileId"/> in one write, cut off again if it fails.</summary>
    private void AppendSetsOrCut(long fileId, List<long> blocks)
    {
        if (blocks.Count == 1)
        {
            AppendOrCut(OpSet, fileId, blocks[0]);
            return;
        }
        byte[] records = _rangeRecords ??= new byte[SetRangeChunk * RecordSize];
        for (int i = 0; i < blocks.Count; i++)
        {
            Encode(records.AsSpan(i * RecordSize, RecordSize), OpSet, fileId, blocks[i]);
        }
        long at = _file.Position;
        try
        {
            _file.Write(records, 0, blocks.Count * RecordSize);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            CutBack(at);
            throw;
        }
        _logRecords += blocks.Count;
        _marksAppended += blocks.Count;
    }

    /// <summary>One log record: the operation, the location, eight reserved zero bytes, and a CRC-32C of the 25 before it.</summary>
    private static void Encode(Span<byte> r, byte op, long fileId, long block)
    {
        r[0] = op;
        BinaryPrimitives.WriteInt64LittleEndian(r[1..], fileId);
        BinaryPrimitives.WriteInt64LittleEndian(r[9..], block);
        BinaryPrimitives.WriteInt64LittleEndian(r[17..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(r[25..], Crc32C.Compute(r[..25]));
    }

    /// <summary>
    /// Appends a mark; when the write fails (a full disk, an I/O error) the bytes it may have left are cut off, so that
    /// no torn record sits in the middle of the log for the next append to follow, and the error goes to the caller.
    /// </summary>
    private void AppendOrCut(byte op, long fileId, long block)
    {
        long at = _file.Position;
        try
        {
            Append(op, fileId, block);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            CutBack(at);
            throw;
        }
    }

    /// <summary>Cuts off what a failed append may have left past <paramref name="at"/>, so no torn record sits mid-log.</summary>
    private void CutBack(long at)
    {
        try
        {
            _file.SetLength(at);
            _file.Position = at;
        }
        catch (IOException)
        {
            // The load drops an incomplete last record; a damaged one turns the map full, which loses nothing.
        }
    }

    private void MaybeCompact()
    {
        if (_logRecords > 65536 && _logRecords > 4 * (_count + 1))
        {
            RewriteLocked();
        }
    }

    private void Load()
    {
        long length = _file.Length;
        if (length < HeaderSize)
        {
            RewriteLocked();
            return;
        }
        var header = new byte[HeaderSize];
        _file.Position = 0;
        _file.ReadExactly(header);
        if (!header.AsSpan(0, 8).SequenceEqual(Magic) || BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8)) != 1)
        {
            CorruptionReport = $"dirty map {Path}: bad header at offset 0; treating every location as dirty";
            IsFull = true;
            RewriteLocked();
            return;
        }
        var reader = new BufferedStream(_file, 1 << 16); // not disposed: it would close the log the rewrite below replaces
        var rec = new byte[RecordSize];
        long offset = HeaderSize;
        while (offset + RecordSize <= length)
        {
            reader.ReadExactly(rec);
            if (BinaryPrimitives.ReadUInt32LittleEndian(rec.AsSpan(25)) != Crc32C.Compute(rec.AsSpan(0, 25)) || rec[0] is < OpSet or > OpNamespace)
            {
                CorruptionReport = $"dirty map {Path}: damaged record at offset {offset}; treating every location as dirty";
                IsFull = true;
                break;
            }
            long fileId = BinaryPrimitives.ReadInt64LittleEndian(rec.AsSpan(1));
            long block = BinaryPrimitives.ReadInt64LittleEndian(rec.AsSpan(9));
            ApplyLoaded(rec[0], fileId, block);
            offset += RecordSize;
        }
        // A partial record at the end is an append torn by a crash before it was acknowledged: dropped by the rewrite.
        RewriteLocked();
    }

    private void ApplyLoaded(byte op, long fileId, long block)
    {
        long word = block >> 6;
        ulong bit = 1UL << (int)(block & 63);
        switch (op)
        {
            case OpSet:
                ref ulong bits = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_words, (fileId, word), out _);
                if ((bits & bit) == 0)
                {
                    bits |= bit;
                    _count++;
                }
                break;
            case OpClear:
                if (_words.TryGetValue((fileId, word), out ulong b) && (b & bit) != 0)
                {
                    b &= ~bit;
                    if (b == 0)
                    {
                        _words.Remove((fileId, word));
                    }
                    else
                    {
                        _words[(fileId, word)] = b;
                    }
                    _count--;
                }
                break;
            case OpFull:
                IsFull = true;
                break;
            case OpNamespace:
                NamespaceDirty = true;
                break;
        }
    }

    /// <summary>Writes the live set as a fresh log: temp file, flush, rename; then reopens the log for appends.</summary>
    private void RewriteLocked()
    {
        string tmp = Path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
        {
            Span<byte> header = stackalloc byte[HeaderSize];
            Magic.CopyTo(header);
            BinaryPrimitives.WriteInt32LittleEndian(header[8..], 1);
            BinaryPrimitives.WriteInt32LittleEndian(header[12..], 0);
            fs.Write(header);
            long written = 0;
            void Emit(FileStream s, byte op, long fileId, long block)
            {
                Span<byte> r = stackalloc byte[RecordSize];
                Encode(r, op, fileId, block);
                s.Write(r);
                written++;
            }
            if (IsFull || _fullOnDisk)
            {
                Emit(fs, OpFull, 0, 0);
            }
            if (NamespaceDirty || _namespaceOnDisk)
            {
                Emit(fs, OpNamespace, 0, 0);
            }
            foreach (var ((fileId, word), bits) in _words)
            {
                ulong b = bits;
                while (b != 0)
                {
                    int i = System.Numerics.BitOperations.TrailingZeroCount(b);
                    Emit(fs, OpSet, fileId, (word << 6) + i);
                    b &= b - 1;
                }
            }
            foreach (Location l in _clearsPending ?? [])
            {
                Emit(fs, OpSet, l.FileId, l.Block); // cleared in memory only: still set on the disk until CommitClears
            }
            fs.Flush(flushToDisk: true);
            _logRecords = written;
        }
        // Close the old log first: Windows refuses to replace a file that a handle has open.
        _file.Dispose();
        File.Move(tmp, Path, overwrite: true);
        _file = new FileStream(Path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
        _file.Position = _file.Length;
        // Reopened first: a folder that fails to flush leaves the map usable and its caller told. Until a flush of the
        // folder succeeds the rename may not be on the disk (a power cut could bring the old log back), so no mark
        // counts as flushed: the next Flush flushes the folder first (HasUnflushedMarks says so meanwhile).
        _folderFlushOwed = true;
        AtomicFile.SyncDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _folderFlushOwed = false;
        _marksFlushed = _marksAppended; // the live set is on disk: written, flushed and renamed into place above
        _unpersisted = null;
        _fullUnpersisted = false;
        _namespaceUnpersisted = false;
    }
}
