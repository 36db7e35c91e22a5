using CloudMirrorFs.Options;
using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Queue;

/// <summary>
/// The seed's transaction queue (7) and buffer (9): an ordered log of transactions shared by every remote facet, each
/// facet with its own head (last committed sequence number), the shared tail, and a count.
/// <para>
/// Records are held in memory while the data held stays under <c>queue.memoryLimit</c>; past it new records are
/// spilled to segment files (<c>seg-*.cmq</c>) until memory falls below half the limit. A record held only in
/// memory is covered by the write-intent map (<c>intent.map</c>): its location is persisted there before
/// <see cref="TryAppend"/> returns, so a crash that loses memory still names every location it lost. Namespace
/// records are always appended to the segment as well (they are small and must replay in order). Nothing is
/// flushed to disk per record: <see cref="Barrier"/> is the group commit.
/// </para>
/// <para>Layout: docs/dev/queue-layout.md.</para>
/// </summary>
public sealed partial class TransactionQueue : IDisposable
{
    private const string CursorsFile = "cursors.json";
    private const string IdFile = "queue.id";
    private const string ResidentFile = "resident.cmq";
    private const int RecordOverhead = 160;

    /// <summary>A write this small (data and overhead) is held in memory even while the queue spills, up to the memory limit.</summary>
    private const int SmallRecordBytes = (64 << 10) + RecordOverhead;
    private const int LazyIntentBits = 1024;

    private readonly Lock _lock = new();
    private readonly string _dir;
    private readonly QueueOptions _options;
    private readonly int _blockSize;
    private readonly DirtyMap _intent;
    private readonly DataArena _arena;
    private readonly DataArena _readBack; // where replicators' batches read spilled records back
    private readonly Dictionary<Location, long> _intentSeq = [];
    private readonly Dictionary<long, long> _wholeSeq = []; // file id -> the newest record that replaces its content (Transaction.ReplacesContent)
    private readonly LinkedList<Run> _runs = new();
    private readonly List<Segment> _segments = [];
    private readonly Dictionary<string, Cursor> _cursors = new(StringComparer.Ordinal);
    private FileStream? _current;
    private Microsoft.Win32.SafeHandles.SafeFileHandle? _currentHandle;
    private Segment? _currentSegment;
    private byte[] _encodeBuffer = new byte[8 << 10]; // a record's head and trailer: grows for long paths
    private long _nextSeq = 1;
    private long _memoryBytes;
    private long _diskBytes;
    private long _tailBytesTotal;
    private bool _spilling;
    private long _segmentWrites;
    private long _segmentFlushed;
    private long _segmentsCreated;
    private long _segmentsNamed; // segments whose name a completed folder fsync covered
    private long _durableWrites; // segment writes a completed Barrier made durable, names included
    private long _lastNamespaceWrite; // the segment write count just after the newest namespace record
    private readonly FileWatermarks _spilledWrites = new(); // per file: the segment write count after its newest spilled record
    private readonly FileWatermarks _intentMarks = new(); // per file: the number of its newest intent-map mark (SetIntentLocked)
    private readonly Func<long, bool> _segmentCovered; // a segment write count a completed Barrier made durable
    private readonly Func<long, bool> _intentCovered; // an intent-map mark a completed flush covered
    private long _commitsSinceTrim;
    private bool _disposed;

    // The index a degraded read asks (PendingFor): for each file id, the first and last sequence number of a record
    // naming it that may still be held, and the renames still held, in order. A file the queue holds nothing for then
    // costs no scan of the queue, and one it does costs a scan of the runs between its first and last record only.
    private readonly Dictionary<long, (long First, long Last)> _fileSpans = [];
    private readonly List<Transaction> _renames = [];
    private int _fileSpansAtPrune;
    private long _recordsVisited;
    private long _headersReadBack;

    private TransactionQueue(string dir, QueueOptions options, int blockSize, DirtyMap intent)
    {
        _dir = dir;
        _options = options;
        _blockSize = blockSize;
        _intent = intent;
        _arena = new DataArena(options.MemoryLimit);
        _segmentCovered = w => w <= _durableWrites;
        _intentCovered = intent.FlushedThrough;
        _readBack = new DataArena(options.MemoryLimit);
    }

    /// <summary>What replaying the queue found at open.</summary>
    public QueueRecovery Recovery { get; private set; } = new();

    /// <summary>
    /// Made when the queue is created and kept in <c>queue.id</c>: the volume records
    /// it per remote facet, and another one at open means the records that fed the facet are gone (the folder deleted,
    /// or on a disk that is not mounted).
    /// </summary>
    public string Id { get; private set; } = "";

    /// <summary>Bytes of transaction data held in memory.</summary>
    public long MemoryBytes
    {
        get
        {
            lock (_lock)
            {
                return _memoryBytes;
            }
        }
    }

    /// <summary>The <c>queue.memoryLimit</c> this queue spills past.</summary>
    public long MemoryLimit => _options.MemoryLimit;

    /// <summary>
    /// Bytes of data appended since <paramref name="cursor"/>'s last commit (what it has read but not committed
    /// included): a cheap measure for pacing a reader, not for accounting.
    /// </summary>
    public long UncommittedBytes(string cursor)
    {
        lock (_lock)
        {
            return Math.Max(0, _tailBytesTotal - GetCursor(cursor).CommittedBytes);
        }
    }

    /// <summary>Bytes of segment files on disk.</summary>
    public long DiskBytes => Volatile.Read(ref _diskBytes);

    /// <summary>The last sequence number handed out.</summary>
    public long Tail
    {
        get
        {
            lock (_lock)
            {
                return _nextSeq - 1;
            }
        }
    }

    /// <summary>Raised (outside the lock) whenever a commit frees space, so blocked writers can retry.</summary>
    public event Action? SpaceFreed;

    /// <summary>
    /// Opens the queue in <paramref name="dir"/>, replaying its segments. <paramref name="cursorNames"/> are the remote
    /// facets; a name not seen before starts at the tail (the volume decides how it is brought up to date).
    /// </summary>
    public static TransactionQueue Open(string dir, QueueOptions options, int blockSize, IEnumerable<string> cursorNames)
    {
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(dir);
        DirtyMap intent = DirtyMap.Open(Path.Combine(dir, "intent.map"));
        var q = new TransactionQueue(dir, options, blockSize, intent);
        try
        {
            q.Recover(cursorNames);
        }
        catch
        {
            q.Dispose();
            throw;
        }
        return q;
    }

    /// <summary>
    /// Appends a transaction, assigning its sequence number, copying its data, and persisting (OS cache) what covers
    /// it: the segment record or the intent bits. Returns false when <c>queue.diskLimit</c> is reached.
    /// </summary>
    public bool TryAppend(Transaction transaction, out long seq) => TryAppendCore(transaction, force: false, out seq);

    /// <summary>Appends even past <c>queue.diskLimit</c> (a writer that already waited under the block policy); returns the sequence number.</summary>
    public long ForceAppend(Transaction transaction)
    {
        TryAppendCore(transaction, force: true, out long seq);
        return seq;
    }

    /// <summary>Whether new records go to the segment files rather than memory (from seven eighths of <c>queue.memoryLimit</c> until half of it is free again).</summary>
    public bool IsSpilling => Volatile.Read(ref _spilling);

    /// <summary>Tests: while set, every call that touches the queue's storage throws it (a failed queue disk).</summary>
    internal IOException? InjectedStorageFailure { get; set; }

    private void ThrowIfStorageFailed()
    {
        if (InjectedStorageFailure is { } e)
        {
            throw e;
        }
    }

    private bool TryAppendCore(Transaction transaction, bool force, out long seq)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        ThrowIfStorageFailed();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long size = transaction.Data.Length + RecordOverhead;
            bool isData = transaction.Kind == TransactionKind.Write;
            if (_spilling && _memoryBytes + size <= _options.MemoryLimit / 2)
            {
                _spilling = false;
            }
            // Spilling starts at seven eighths of the limit; the last eighth is kept for small writes, which are held
            // in memory while the queue spills, up to the limit: a program that fsyncs small writes beside a large
            // copy then finds its records covered by intent bits, and its barrier does not have to flush the copy's
            // spilled records before them (BarrierFor).
            if (!_spilling && _memoryBytes + size > _options.MemoryLimit - (_options.MemoryLimit / 8))
            {
                _spilling = true;
            }
            bool spill = _spilling && !(isData && size <= SmallRecordBytes && _memoryBytes + size <= _options.MemoryLimit);
            bool onDisk = spill || !isData;
            int recordSize = onDisk ? SegmentFormat.RecordSize(transaction) : 0;
            if (onDisk && !force && _diskBytes + recordSize > _options.DiskLimit)
            {
                seq = 0;
                return false;
            }

            // The queue takes the transaction over: it gets its sequence number, and its own copy of the data when
            // it is held in memory (the caller's buffer is reused as soon as the write returns).
            Transaction t = transaction;
            t.Seq = _nextSeq;
            t.EnqueuedUtc = DateTime.UtcNow;
            if (!spill && !t.Data.IsEmpty)
            {
                (t.Data, t.Owner) = _arena.Copy(t.Data.Span);
            }
            TrackWhole(t);
            if (t.ChangesRange)
            {
                // The intent bits are written before the record is acknowledged, whatever holds the record
                // (usually MarkIntent already did, holding them at exactly this sequence number).
                TrackIntentForAppend(t);
            }
            long offset = 0;
            if (onDisk)
            {
                offset = WriteRecord(t, recordSize);
                if (isData)
                {
                    _spilledWrites.Set(t.FileId, _segmentWrites, _segmentCovered);
                }
                else
                {
                    _lastNamespaceWrite = _segmentWrites;
                }
            }
            seq = _nextSeq++;
            _tailBytesTotal += t.Data.Length;
            AddToRuns(t, spilled: spill, offset, recordSize);
            if (!spill && isData)
            {
                _memoryBytes += size;
            }
            return true;
        }
    }

    /// <summary>
    /// Marks the blocks a write is about to change, before any facet sees it (a write-intent log): if the process dies
    /// between the local write and the queue append, the location is still named.
    /// </summary>
    public void MarkIntent(long fileId, long offset, long length)
    {
        if (length <= 0)
        {
            return;
        }
        ThrowIfStorageFailed();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long first = offset / _blockSize, last = (offset + length - 1) / _blockSize;
            for (long b = first; b <= last; b++)
            {
                // Until the record is appended, nothing may trim the bit: hold it at the newest possible position.
                ref long seq = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_intentSeq, new Location(fileId, b), out bool held);
                if (!held || seq < _nextSeq)
                {
                    seq = _nextSeq;
                }
            }
            // The bits, in one write to the intent map for all the blocks.
            if (_intent.SetRange(fileId, first, last) > 0)
            {
                _intentMarks.Set(fileId, _intent.MarksAppended, _intentCovered);
            }
        }
    }

    /// <summary>
    /// Forgets the in-memory hold <see cref="MarkIntent"/> put on a write's blocks when no record was appended for it
    /// (every facet was released and took the location in its own dirty map instead).
    /// </summary>
    public void EndIntent(long fileId, long offset, long length)
    {
        if (length <= 0)
        {
            return;
        }
        lock (_lock)
        {
            for (long b = offset / _blockSize; b <= (offset + length - 1) / _blockSize; b++)
            {
                var loc = new Location(fileId, b);
                if (_intentSeq.TryGetValue(loc, out long seq) && seq >= _nextSeq)
                {
                    _intentSeq.Remove(loc);
                }
            }
        }
    }

    /// <summary>True when <see cref="Barrier"/> has something to make durable (records, a new segment's name, intent bits).</summary>
    public bool HasUnflushed
    {
        get
        {
            if (InjectedStorageFailure is not null)
            {
                return true; // the barrier is where a failed queue disk shows
            }
            lock (_lock)
            {
                if ((_segmentFlushed < _segmentWrites && _current is not null) || _segmentsNamed < _segmentsCreated)
                {
                    return true;
                }
            }
            return _intent.HasUnflushedMarks;
        }
    }

    /// <summary>
    /// True when <see cref="BarrierFor"/> would flush the current segment for <paramref name="fileId"/>: a record
    /// naming a file (any file: a name's durability may hang on its parents') or one of this file's spilled writes
    /// was appended since the last completed <see cref="Barrier"/>.
    /// </summary>
    public bool SegmentNeededFor(long fileId)
    {
        if (InjectedStorageFailure is not null)
        {
            return true;
        }
        lock (_lock)
        {
            return _lastNamespaceWrite > _durableWrites || _spilledWrites.Of(fileId) > _durableWrites;
        }
    }

    /// <summary>True when an intent bit of <paramref name="fileId"/> was set and no completed flush of the intent map covered it yet.</summary>
    public bool IntentNeededFor(long fileId)
    {
        long mark;
        lock (_lock)
        {
            mark = _intentMarks.Of(fileId);
        }
        return !_intent.FlushedThrough(mark);
    }

    /// <summary>True when <see cref="BarrierFor"/> has something to make durable.</summary>
    public bool HasUnflushedFor(long fileId) => SegmentNeededFor(fileId) || IntentNeededFor(fileId);

    /// <summary>
    /// One file's share of the group commit: the segment only when <see cref="SegmentNeededFor"/> says so, the intent
    /// map only when <see cref="IntentNeededFor"/> does. The file's records held in memory are covered by their intent
    /// bits; the spilled records and new intent bits of other files are not this file's barrier's to wait for (a log
    /// is flushed up to its end, so a large copy's would be). Returns true when it flushed everything, as
    /// <see cref="Barrier"/> does.
    /// </summary>
    public bool BarrierFor(long fileId)
    {
        if (SegmentNeededFor(fileId))
        {
            Barrier();
            return true;
        }
        ThrowIfStorageFailed();
        if (IntentNeededFor(fileId))
        {
            _intent.Flush();
            PruneIntentMarks();
        }
        return false;
    }

    /// <summary>Forgets the files whose newest intent mark a completed flush covered.</summary>
    private void PruneIntentMarks()
    {
        lock (_lock)
        {
            _intentMarks.Forget(_intentCovered);
        }
    }

    /// <summary>
    /// The group commit: every record and intent bit appended so far reaches stable storage. Costs only the fsyncs
    /// that have something to make durable: the current segment when records were written to it since the last
    /// completed barrier, the queue folder when a segment was created since, and the intent map when bits were set.
    /// </summary>
    public void Barrier()
    {
        ThrowIfStorageFailed();
        FileStream? current;
        long target, created;
        bool syncDirectory;
        lock (_lock)
        {
            target = _segmentWrites;
            current = _segmentFlushed < target ? _current : null;
            created = _segmentsCreated;
            syncDirectory = _segmentsNamed < created;
        }
        if (syncDirectory)
        {
            // A segment created since the last barrier: its name reaches stable storage with it.
            AtomicFile.SyncDirectory(_dir);
        }
        if (current is not null)
        {
            try
            {
                current.Flush(flushToDisk: true);
            }
            catch (ObjectDisposedException)
            {
                // Closed meanwhile: rolled over (flushed before it was closed) or drained (every cursor has committed
                // its records, so nothing needs them).
            }
        }
        lock (_lock)
        {
            _segmentFlushed = Math.Max(_segmentFlushed, target);
            _segmentsNamed = Math.Max(_segmentsNamed, created);
            // Every record written up to target is durable, in a segment whose name is: the current one was just
            // flushed, and older ones were flushed when they were rolled over and named by the folder flush above.
            _durableWrites = Math.Max(_durableWrites, target);
            _spilledWrites.Forget(_segmentCovered);
        }
        _intent.Flush();
        PruneIntentMarks();
    }

    /// <summary>True when the facet's cursor is active (the queue feeds it).</summary>
    public bool IsActive(string name)
    {
        lock (_lock)
        {
            return GetCursor(name).Active;
        }
    }

    /// <summary>The last sequence number a facet has committed.</summary>
    public long HeadOf(string name)
    {
        lock (_lock)
        {
            return GetCursor(name).Head;
        }
    }

    /// <summary>The cursors, as <c>cmfs status</c> shows them.</summary>
    public IReadOnlyList<QueueCursorInfo> Cursors()
    {
        lock (_lock)
        {
            return [.. _cursors.Values.Select(InfoLocked)];
        }
    }

    /// <summary>One cursor's view.</summary>
    public QueueCursorInfo CursorInfo(string name)
    {
        lock (_lock)
        {
            return InfoLocked(GetCursor(name));
        }
    }

    /// <summary>
    /// Reads up to <paramref name="maxRecords"/> transactions after <paramref name="afterSeq"/> for a cursor, in order,
    /// stopping once <paramref name="maxBytes"/> of data is collected (at least one record is returned if any waits).
    /// The batch holds the bytes of the records it read from memory until it is disposed (<see cref="QueueBatch"/>).
    /// </summary>
    public QueueBatch Read(string cursor, long afterSeq, int maxRecords, long maxBytes)
    {
        var result = new List<Transaction>();
        List<Run> runs;
        Cursor c;
        ResumePoint? resume;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            c = GetCursor(cursor);
            afterSeq = Math.Max(afterSeq, c.Head);
            runs = [.. _runs.Where(r => r.LastSeq > afterSeq)];
            resume = c.ReadResume;
        }
        var batch = new QueueBatch(result);
        try
        {
            resume = Scan(runs, new Batch(result, afterSeq, maxRecords, maxBytes).TryAdd, readInto: _readBack, afterSeq: afterSeq, resume: resume);
            lock (_lock)
            {
                c.ReadResume = resume;
            }
        }
        catch
        {
            batch.Dispose();
            throw;
        }
        return batch;
    }

    /// <summary>
    /// The records a cursor has not passed that name file <paramref name="fileId"/>, and every rename (any of them may
    /// have moved a folder above it), in queue order, each a copy that outlives the entry's release: the seed's "read
    /// from the buffer". Found through the queue's index, not a scan of everything held, so a degraded read of a file
    /// the backlog does not touch reads no segment. An entry released while this runs has been committed by the
    /// facet, so reading the facet afterwards sees it.
    /// </summary>
    public IReadOnlyList<Transaction> PendingFor(string cursor, long fileId) => PendingFor(cursor, new HashSet<long> { fileId });

    /// <summary>
    /// <see cref="PendingFor(string, long)"/> for several files at once (a listing's children): the runs between the
    /// first and the last record of each are read once.
    /// </summary>
    public IReadOnlyList<Transaction> PendingFor(string cursor, IReadOnlySet<long> fileIds)
    {
        ArgumentNullException.ThrowIfNull(fileIds);
        List<Run> runs;
        List<Transaction> renames;
        long head, last = 0;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            head = GetCursor(cursor).Head;
            renames = [.. _renames.Where(t => t.Seq > head).Select(t => t.Detached())];
            var spans = new List<(long From, long To)>();
            foreach (long id in fileIds)
            {
                if (_fileSpans.TryGetValue(id, out var span) && span.Last > head)
                {
                    spans.Add((Math.Max(head + 1, span.First), span.Last));
                    last = Math.Max(last, span.Last);
                }
            }
            runs = RunsOverlapping(spans);
        }
        var mine = new List<Transaction>();
        _ = Scan(runs, t =>
        {
            if (t.Seq > last)
            {
                return false;
            }
            if (t.Seq > head)
            {
                mine.Add(t.Detached());
            }
            return true;
        }, (kind, id) => kind != TransactionKind.Rename && fileIds.Contains(id), afterSeq: head);
        if (renames.Count == 0)
        {
            return mine;
        }
        var merged = new List<Transaction>(mine.Count + renames.Count);
        int i = 0, j = 0;
        while (i < mine.Count || j < renames.Count)
        {
            merged.Add(j == renames.Count || (i < mine.Count && mine[i].Seq < renames[j].Seq) ? mine[i++] : renames[j++]);
        }
        return merged;
    }

    /// <summary>The runs (in order) that hold a record within any of <paramref name="spans"/>: the spans merged, then one pass over both.</summary>
    private List<Run> RunsOverlapping(List<(long From, long To)> spans)
    {
        var runs = new List<Run>();
        spans.Sort();
        var merged = new List<(long From, long To)>(spans.Count);
        foreach (var (from, to) in spans)
        {
            if (merged.Count > 0 && from <= merged[^1].To + 1)
            {
                merged[^1] = (merged[^1].From, Math.Max(merged[^1].To, to));
            }
            else
            {
                merged.Add((from, to));
            }
        }
        int k = 0;
        foreach (Run r in _runs)
        {
            while (k < merged.Count && merged[k].To < r.FirstSeq)
            {
                k++;
            }
            if (k == merged.Count)
            {
                break;
            }
            if (merged[k].From <= r.LastSeq)
            {
                runs.Add(r);
            }
        }
        return runs;
    }

    /// <summary>Records decoded by the queue's scans (batches read, and <see cref="PendingFor(string, IReadOnlySet{long})"/>), for tests.</summary>
    internal long RecordsVisited => Interlocked.Read(ref _recordsVisited);

    /// <summary>Record headers the scans read from segments, of records decoded and of records stepped over, for tests.</summary>
    internal long HeadersReadBack => Interlocked.Read(ref _headersReadBack);

    /// <summary>
    /// Records that a facet has committed everything up to <paramref name="seq"/> (with <paramref name="bytes"/> of
    /// data since its previous commit). Entries every active cursor has passed are released.
    /// </summary>
    public void Commit(string cursor, long seq, long bytes)
    {
        bool freed;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Cursor c = GetCursor(cursor);
            if (seq <= c.Head)
            {
                return;
            }
            c.Head = Math.Min(seq, _nextSeq - 1);
            c.CommittedBytes += bytes;
            freed = ReleaseLocked();
            if (++_commitsSinceTrim >= 1024)
            {
                _commitsSinceTrim = 0;
                TrimIntentLocked();
                SaveCursorsLocked();
            }
        }
        if (freed)
        {
            SpaceFreed?.Invoke();
        }
    }

    /// <summary>
    /// Moves a cursor past <paramref name="seq"/> without sending what lies before: the records are older than what its
    /// facet holds. Saved at once, unlike a commit's head: a crash must not bring those records back to be sent.
    /// </summary>
    public void Skip(string cursor, long seq)
    {
        Commit(cursor, seq, 0);
        lock (_lock)
        {
            SaveCursorsLocked();
        }
    }

    /// <summary>
    /// Releases a cursor (overflow under the <c>unsync</c> policy, or a facet taken offline): every location it has not
    /// committed is added to <paramref name="missed"/> with a namespace mark, then its entries are freed. The facet is
    /// NotSynchronised from then on, and <see cref="Reattach"/> brings it back.
    /// </summary>
    public void Release(string cursor, DirtyMap missed)
    {
        ArgumentNullException.ThrowIfNull(missed);
        bool freed;
        lock (_lock)
        {
            Cursor c = GetCursor(cursor);
            if (!c.Active)
            {
                return;
            }
            foreach (var (loc, lastSeq) in _intentSeq)
            {
                if (lastSeq > c.Head)
                {
                    missed.Set(loc);
                }
            }
            foreach (var (fileId, lastSeq) in _wholeSeq)
            {
                if (lastSeq > c.Head)
                {
                    missed.Set(Location.WholeFile(fileId));
                }
            }
            if (c.Head < _nextSeq - 1)
            {
                missed.MarkNamespaceDirty();
            }
            c.Active = false;
            c.Head = _nextSeq - 1;
            SaveCursorsLocked();
            freed = ReleaseLocked();
        }
        if (freed)
        {
            SpaceFreed?.Invoke();
        }
    }

    /// <summary>Makes a released cursor active again at the tail; returns the tail sequence number.</summary>
    public long Reattach(string cursor)
    {
        lock (_lock)
        {
            Cursor c = GetCursor(cursor);
            c.Active = true;
            c.Head = _nextSeq - 1;
            c.CommittedBytes = _tailBytesTotal;
            SaveCursorsLocked();
            return c.Head;
        }
    }

    /// <summary>Forgets the lost-location report of the previous run once the volume has moved it into the facets' dirty maps.</summary>
    public void AcknowledgeRecovery()
    {
        lock (_lock)
        {
            // The file keeps bits only for records held in memory again; records replayed from segments stay
            // tracked in memory (their segment covers them on disk), so a later release can name their locations.
            _intent.ClearAll();
            foreach (Run r in _runs.Where(r => !r.OnDisk))
            {
                foreach (Transaction t in r.Records!.Where(t => t.Kind == TransactionKind.Write))
                {
                    TrackIntent(t, persist: true);
                }
            }
            Recovery = Recovery with { LostLocations = [] };
        }
    }

    /// <summary>Closes the queue cleanly: in-memory records are written to a checkpoint and flushed, so the next open loses nothing.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            _arena.Dispose();
            _readBack.Dispose();
            try
            {
                CheckpointResidentLocked();
                _current?.Flush(flushToDisk: true);
                if (_segmentsNamed < _segmentsCreated)
                {
                    AtomicFile.SyncDirectory(_dir);
                    _segmentsNamed = _segmentsCreated;
                }
                SaveCursorsLocked(closed: true);
                if (Recovery.LostLocations.Count == 0)
                {
                    // Everything the intent map covered is now in the checkpoint or a segment, flushed.
                    _intent.ClearAll();
                }
            }
            finally
            {
                _current?.Dispose();
                _intent.Dispose();
            }
        }
    }
}
