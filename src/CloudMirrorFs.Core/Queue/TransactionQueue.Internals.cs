using System.Text.Json;
using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Queue;

public sealed partial class TransactionQueue
{
    /// <summary>A stretch of consecutive transactions, all in memory or all in one segment file.</summary>
    private sealed class Run
    {
        public long FirstSeq;
        public long LastSeq;
        public bool OnDisk;
        public List<Transaction>? Records;
        public Segment? Segment;
        public long StartOffset;
        public long EndOffset;
        public long DataBytes;
        public long MemoryBytes;
        public DateTime FirstEnqueuedUtc;
    }

    /// <summary>
    /// In spilled run <paramref name="Run"/>, the record at <paramref name="Offset"/> of its segment has sequence number
    /// <paramref name="Seq"/>, and those before it lower ones: where a cursor's last batch stopped, so that its next one
    /// starts there instead of stepping again over every record it already has (a 64 MiB segment read in 16 MiB
    /// batches would otherwise be read 2.5 times).
    /// </summary>
    private sealed record ResumePoint(Run Run, long Seq, long Offset);

    private sealed class Segment
    {
        public required string Path;
        public long FirstSeq;
        public long LastSeq;
        public long Length;
    }

    private sealed class Cursor
    {
        public required string Name;
        public long Head;
        public bool Active = true;
        public long CommittedBytes;

        /// <summary>Where this cursor's last batch stopped reading a spilled run (under the queue's lock).</summary>
        public ResumePoint? ReadResume;
    }

    /// <summary>
    /// The cursor file. <paramref name="Closed"/> is true only as a clean close wrote it: the heads are then exact.
    /// While the queue runs they are saved now and then, and segments the cursors passed are deleted in between, so
    /// after a crash the heads may be older than the oldest record kept, which is no loss.
    /// </summary>
    private sealed record CursorsState(long NextSeq, Dictionary<string, CursorState> Cursors, bool Closed = false);

    private sealed record CursorState(long Head, bool Active);

    private Cursor GetCursor(string name)
        => _cursors.TryGetValue(name, out Cursor? c) ? c
            : throw new ArgumentException($"the queue has no cursor for facet '{name}'", nameof(name));

    private QueueCursorInfo InfoLocked(Cursor c)
    {
        long tail = _nextSeq - 1;
        if (!c.Active)
        {
            return new QueueCursorInfo(c.Name, false, c.Head, tail, 0, 0, null);
        }
        long bytes = 0;
        DateTime? oldest = null;
        foreach (Run r in _runs)
        {
            if (r.LastSeq <= c.Head)
            {
                continue;
            }
            bytes += r.DataBytes;
            oldest ??= r.FirstEnqueuedUtc;
        }
        return new QueueCursorInfo(c.Name, true, c.Head, tail, tail - c.Head, bytes, oldest);
    }

    private long WriteRecord(Transaction t, int recordSize)
    {
        if (_current is null || _currentSegment!.Length + recordSize > _options.SegmentSize)
        {
            StartSegmentLocked(t.Seq);
        }
        // Head, data and checksum go down in one gathered write: the data is not copied on its way to the segment.
        (ReadOnlyMemory<byte> head, ReadOnlyMemory<byte> trailer) = EncodeAround(t, recordSize);
        long offset = _currentSegment!.Length;
        try
        {
            RandomAccess.Write(_currentHandle!, [head, t.Data, trailer], offset);
        }
        catch (IOException e)
        {
            // A short write leaves a torn record: cut it off so later appends stay readable.
            try
            {
                _current!.SetLength(offset);
            }
            catch (IOException)
            {
            }
            throw MirrorException.From(e, $"queue segment {_currentSegment.Path}");
        }
        _currentSegment.Length += recordSize;
        _currentSegment.LastSeq = t.Seq;
        _segmentWrites++;
        _diskBytes += recordSize;
        return offset;
    }

    private void StartSegmentLocked(long firstSeq)
    {
        if (_current is not null && _segmentFlushed < _segmentWrites)
        {
            // A barrier reaches only the current segment: records not yet flushed in the one being closed get there
            // now (once per segment, not per record).
            _current.Flush(flushToDisk: true);
            _segmentFlushed = _segmentWrites;
        }
        _current?.Dispose();
        string path = Path.Combine(_dir, SegmentFormat.FileName(firstSeq));
        // Records are written at their offsets (RandomAccess), never through the stream's position. CreateNew, not
        // Create: ext4 writes out at its next journal commit the data of a file truncated to nothing (O_TRUNC, even of
        // a file that is new), so any fsync on that disk, of any file, flushed the segment's spilled records too. A
        // file already there by this name holds no record (its name is the first sequence number it was started
        // for, and the replay put the next one after every record found): left by a crash between create and write.
        File.Delete(path);
        _current = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read | FileShare.Delete, bufferSize: 0);
        Span<byte> header = stackalloc byte[SegmentFormat.FileHeaderSize];
        SegmentFormat.WriteFileHeader(header, firstSeq);
        // Taken once: FileStream.SafeFileHandle seeks the descriptor to the stream's position at every read of it.
        _currentHandle = _current.SafeFileHandle;
        RandomAccess.Write(_currentHandle, header, 0);
        _currentSegment = new Segment { Path = path, FirstSeq = firstSeq, LastSeq = firstSeq - 1, Length = SegmentFormat.FileHeaderSize };
        _segments.Add(_currentSegment);
        _diskBytes += SegmentFormat.FileHeaderSize;
        // The new name reaches stable storage at the next barrier, with the records (the OS cache covers a kill).
        _segmentsCreated++;
    }

    private void AddToRuns(Transaction t, bool spilled, long offset, int recordSize)
    {
        ref (long First, long Last) span = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_fileSpans, t.FileId, out bool known);
        span = (known ? span.First : t.Seq, t.Seq);
        if (t.Kind == TransactionKind.Rename)
        {
            _renames.Add(t);
        }
        Run? last = _runs.Last?.Value;
        bool extend = last is not null && last.OnDisk == spilled
            && (!spilled || (last.Segment == _currentSegment && last.EndOffset == offset))
            && (spilled || last.Records!.Count < 65536);
        if (!extend)
        {
            last = new Run
            {
                FirstSeq = t.Seq,
                OnDisk = spilled,
                Records = spilled ? null : [],
                Segment = spilled ? _currentSegment : null,
                StartOffset = offset,
                EndOffset = offset,
                FirstEnqueuedUtc = t.EnqueuedUtc,
            };
            _runs.AddLast(last);
        }
        last!.LastSeq = t.Seq;
        last.DataBytes += t.Data.Length;
        if (spilled)
        {
            last.EndOffset = offset + recordSize;
        }
        else
        {
            last.Records!.Add(t);
            if (t.Kind == TransactionKind.Write)
            {
                last.MemoryBytes += t.Data.Length + RecordOverhead;
            }
        }
    }

    private long MinActiveHead()
    {
        long min = _nextSeq - 1;
        foreach (Cursor c in _cursors.Values)
        {
            if (c.Active && c.Head < min)
            {
                min = c.Head;
            }
        }
        return min;
    }

    /// <summary>Frees runs and segments every active cursor has passed. Returns true when space was freed.</summary>
    private bool ReleaseLocked()
    {
        long min = MinActiveHead();
        bool freed = false;
        while (_runs.First is { } node && node.Value.LastSeq <= min)
        {
            _memoryBytes -= node.Value.MemoryBytes;
            if (node.Value.Records is { } records)
            {
                foreach (Transaction t in records)
                {
                    t.Owner?.Release();
                    t.Owner = null;
                }
            }
            _runs.RemoveFirst();
            freed = true;
        }
        if (_runs.First is { } head && !head.Value.OnDisk && head.Value.FirstSeq <= min)
        {
            // Trim the front of a partly passed in-memory run.
            Run r = head.Value;
            int n = 0;
            long mem = 0, data = 0;
            foreach (Transaction t in r.Records!)
            {
                if (t.Seq > min)
                {
                    break;
                }
                n++;
                t.Owner?.Release();
                t.Owner = null;
                data += t.Data.Length;
                mem += t.Kind == TransactionKind.Write ? t.Data.Length + RecordOverhead : 0;
            }
            if (n > 0)
            {
                r.Records.RemoveRange(0, n);
                r.FirstSeq = r.Records[0].Seq;
                r.FirstEnqueuedUtc = r.Records[0].EnqueuedUtc;
                r.MemoryBytes -= mem;
                r.DataBytes -= data;
                _memoryBytes -= mem;
                freed = true;
            }
        }
        ForgetIndexedBefore(min);
        for (int i = 0; i < _segments.Count;)
        {
            Segment s = _segments[i];
            if (s != _currentSegment && s.LastSeq <= min)
            {
                try
                {
                    File.Delete(s.Path);
                }
                catch (IOException)
                {
                    i++;
                    continue;
                }
                _diskBytes -= s.Length;
                _segments.RemoveAt(i);
                freed = true;
                continue;
            }
            i++;
        }
        if (min == _nextSeq - 1)
        {
            // Fully drained: nothing is held anywhere, so no location needs covering. The bits are left in place
            // (the periodic trim clears them) while there are few: clearing them now would make the next write to
            // the same blocks set them again, and the next barrier fsync the map again. A bit left behind costs,
            // after a crash only, one block comparison in the resync. Bits of writes still in flight (MarkIntent
            // done, record not yet appended) are held past the tail, so the trim never takes them.
            if (_intentSeq.Count > LazyIntentBits)
            {
                TrimIntentLocked();
            }
            _wholeSeq.Clear(); // every record naming them is committed everywhere
            if (_currentSegment is not null && _currentSegment.Length > SegmentFormat.FileHeaderSize && _segments.Count == 1)
            {
                // Start the next append in a fresh file so the drained one can go.
                _current!.Dispose();
                _current = null;
                _currentHandle = null;
                File.Delete(_currentSegment.Path);
                _diskBytes -= _currentSegment.Length;
                _segments.Clear();
                _currentSegment = null;
            }
        }
        return freed;
    }

    /// <summary>Drops intent bits, and whole-file marks, whose last record every active cursor has committed.</summary>
    private void TrimIntentLocked()
    {
        long min = MinActiveHead();
        List<Location>? stale = null;
        foreach (var (loc, seq) in _intentSeq)
        {
            if (seq <= min)
            {
                (stale ??= []).Add(loc);
            }
        }
        foreach (var (fileId, seq) in _wholeSeq)
        {
            if (seq <= min)
            {
                _wholeSeq.Remove(fileId);
            }
        }
        if (stale is null)
        {
            return;
        }
        foreach (Location loc in stale)
        {
            _intentSeq.Remove(loc);
            _intent.Clear(loc);
        }
    }

    /// <summary>The queue's id from <c>queue.id</c>, made and saved when the file is missing (a new queue, or one an older build made).</summary>
    private string LoadOrMakeId()
    {
        string path = Path.Combine(_dir, IdFile);
        if (PathProbe.Attributes(path) is not null && File.ReadAllText(path).Trim() is { Length: 32 } id && id.All(char.IsAsciiHexDigitLower))
        {
            return id;
        }
        string made = Guid.NewGuid().ToString("N");
        AtomicFile.Write(path, System.Text.Encoding.ASCII.GetBytes(made + "\n"));
        return made;
    }

    private void SaveCursorsLocked(bool closed = false)
    {
        var state = new CursorsState(_nextSeq, _cursors.Values.ToDictionary(c => c.Name, c => new CursorState(c.Head, c.Active)), closed);
        AtomicFile.Write(Path.Combine(_dir, CursorsFile), JsonSerializer.SerializeToUtf8Bytes(state));
    }

    /// <summary>
    /// A record's head (header and paths) and trailer (checksum) in the queue's encode buffer, to be written around
    /// its data: a segment and the resident checkpoint write records the same way, without copying the data.
    /// </summary>
    private (ReadOnlyMemory<byte> Head, ReadOnlyMemory<byte> Trailer) EncodeAround(Transaction t, int recordSize)
    {
        int headSize = recordSize - t.Data.Length - SegmentFormat.TrailerSize;
        if (_encodeBuffer.Length < headSize + SegmentFormat.TrailerSize)
        {
            _encodeBuffer = new byte[Math.Max(headSize + SegmentFormat.TrailerSize, _encodeBuffer.Length * 2)];
        }
        Memory<byte> head = _encodeBuffer.AsMemory(0, headSize);
        Memory<byte> trailer = _encodeBuffer.AsMemory(headSize, SegmentFormat.TrailerSize);
        SegmentFormat.EncodeParts(t, head.Span, trailer.Span);
        return (head, trailer);
    }

    /// <summary>At a clean close, writes the in-memory data records to a checkpoint file so the next open restores them.</summary>
    private void CheckpointResidentLocked()
    {
        string path = Path.Combine(_dir, ResidentFile);
        var records = _runs.Where(r => !r.OnDisk).SelectMany(r => r.Records!).Where(t => t.Kind == TransactionKind.Write).ToList();
        if (records.Count == 0)
        {
            File.Delete(path);
            return;
        }
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
        {
            Span<byte> header = stackalloc byte[SegmentFormat.FileHeaderSize];
            SegmentFormat.WriteFileHeader(header, records[0].Seq);
            fs.Write(header);
            foreach (Transaction t in records)
            {
                (ReadOnlyMemory<byte> head, ReadOnlyMemory<byte> trailer) = EncodeAround(t, SegmentFormat.RecordSize(t));
                fs.Write(head.Span);
                fs.Write(t.Data.Span);
                fs.Write(trailer.Span);
            }
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
        AtomicFile.SyncDirectory(_dir);
    }

    /// <summary>
    /// A batch being collected for a reader: stops at a record count or a byte budget (one record always fits). A record
    /// whose bytes the queue owns is added as a lent copy (<see cref="Transaction.Lent"/>; memory runs are scanned
    /// under the lock, so the entry cannot be released in between).
    /// </summary>
    private sealed class Batch(List<Transaction> records, long afterSeq, int maxRecords, long maxBytes)
    {
        private long _bytes = records.Sum(t => (long)t.Data.Length);

        public long AfterSeq { get; private set; } = afterSeq;

        /// <summary>Adds <paramref name="t"/> when it is past the reader's position; false once the batch is full.</summary>
        public bool TryAdd(Transaction t)
        {
            if (t.Seq <= AfterSeq)
            {
                return true;
            }
            if (records.Count >= maxRecords || (records.Count > 0 && _bytes + t.Data.Length > maxBytes))
            {
                return false;
            }
            records.Add(t.Owner is { } owner ? t.Lent(owner) : t);
            _bytes += t.Data.Length;
            AfterSeq = t.Seq;
            return true;
        }
    }

    /// <summary>
    /// Drops from the index what every active cursor has passed: the renames at once, the file spans now and then
    /// (a pass over them once their count has doubled since the last one, so the cost per record stays constant).
    /// </summary>
    private void ForgetIndexedBefore(long min)
    {
        int passed = 0;
        while (passed < _renames.Count && _renames[passed].Seq <= min)
        {
            passed++;
        }
        _renames.RemoveRange(0, passed);
        if (_fileSpans.Count > (2 * _fileSpansAtPrune) + 1024)
        {
            foreach (var (file, span) in _fileSpans)
            {
                if (span.Last <= min)
                {
                    _fileSpans.Remove(file);
                }
            }
            _fileSpansAtPrune = _fileSpans.Count;
        }
    }

    /// <summary>
    /// Visits the records of <paramref name="runs"/> in order until <paramref name="visit"/> returns false: records
    /// held in memory under the lock (their bytes live in the arena until released), spilled ones read back from their
    /// segment outside it (files are append-only, and a run's range is fully written). A segment released since the
    /// runs were taken is skipped: every cursor has committed it.
    /// </summary>
    private ResumePoint? Scan(List<Run> runs, Func<Transaction, bool> visit, Func<TransactionKind, long, bool>? wanted = null, DataArena? readInto = null,
        long afterSeq = 0, ResumePoint? resume = null)
    {
        long visited = 0, headers = 0;
        try
        {
            return ScanRuns(runs, visit, wanted, readInto, afterSeq, resume, ref visited, ref headers);
        }
        finally
        {
            Interlocked.Add(ref _recordsVisited, visited);
            Interlocked.Add(ref _headersReadBack, headers);
        }
    }

    /// <summary>
    /// Returns where a spilled run's reading stopped (at the record <paramref name="visit"/> refused), null when it stopped
    /// elsewhere or went through the end. A <paramref name="resume"/> point in one of the runs, at or before the record
    /// after <paramref name="afterSeq"/>, is where that run's reading starts.
    /// </summary>
    private ResumePoint? ScanRuns(List<Run> runs, Func<Transaction, bool> visit, Func<TransactionKind, long, bool>? wanted, DataArena? readInto, long afterSeq,
        ResumePoint? resume, ref long visited, ref long headers)
    {
        foreach (Run r in runs)
        {
            if (!r.OnDisk)
            {
                lock (_lock)
                {
                    List<Transaction> records = r.Records!;
                    // Records in a run are in sequence order: start after what the reader has, under the lock the
                    // writers' appends wait for, instead of walking up to it from the run's first record.
                    for (int i = FirstAfter(records, afterSeq); i < records.Count; i++)
                    {
                        Transaction t = records[i];
                        if (wanted is not null && !wanted(t.Kind, t.FileId))
                        {
                            continue;
                        }
                        visited++;
                        if (!visit(t))
                        {
                            return null;
                        }
                    }
                }
                continue;
            }
            SegmentReader reader;
            try
            {
                long start = resume is { } p && p.Run == r && p.Seq <= afterSeq + 1 ? p.Offset : r.StartOffset;
                reader = new SegmentReader(r.Segment!.Path, start, readInto);
            }
            catch (FileNotFoundException)
            {
                continue;
            }
            using (reader)
            {
                ResumePoint? stoppedAt;
                try
                {
                    stoppedAt = ScanSpilledRun(r, reader, visit, wanted, afterSeq, ref visited);
                }
                finally
                {
                    headers += reader.HeadersRead;
                }
                if (stoppedAt is not null)
                {
                    return stoppedAt;
                }
            }
        }
        return null;
    }

    /// <summary>The index of the first of <paramref name="records"/> (in sequence order) after <paramref name="seq"/>.</summary>
    private static int FirstAfter(List<Transaction> records, long seq)
    {
        int lo = 0, hi = records.Count;
        while (lo < hi)
        {
            int mid = lo + ((hi - lo) / 2);
            if (records[mid].Seq <= seq)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        return lo;
    }

    /// <summary>Visits a spilled run's records from its reader; where it stopped once <paramref name="visit"/> asked it to, else null.</summary>
    private static ResumePoint? ScanSpilledRun(Run r, SegmentReader reader, Func<Transaction, bool> visit, Func<TransactionKind, long, bool>? wanted, long afterSeq, ref long visited)
    {
        while (reader.Next(r.EndOffset, wanted, afterSeq) is { } t)
        {
            visited++;
            bool more;
            try
            {
                more = visit(t);
            }
            finally
            {
                t.Owner?.Release(); // the reader's hold on room in readInto: a visitor that keeps the record took its own
            }
            if (!more)
            {
                return new ResumePoint(r, t.Seq, reader.RecordOffset);
            }
        }
        if (reader.Problem is not null && reader.Offset < r.EndOffset)
        {
            throw new MirrorException(MirrorError.IoError,
                $"queue segment {r.Segment!.Path}, offset {reader.Offset}: {reader.Problem} while reading it back; the facets behind it need a resync (cmfs resync)");
        }
        return null;
    }

    private void Recover(IEnumerable<string> cursorNames)
    {
        CursorsState? saved = null;
        string? cursorsLost = null;
        string cursorsPath = Path.Combine(_dir, CursorsFile);
        if (PathProbe.Attributes(cursorsPath) is not null)
        {
            try
            {
                saved = JsonSerializer.Deserialize<CursorsState>(File.ReadAllBytes(cursorsPath))
                    ?? throw new JsonException("it holds null");
                if (saved.Cursors is null)
                {
                    throw new JsonException("it names no cursors");
                }
            }
            catch (JsonException e)
            {
                saved = null;
                cursorsLost = $"queue cursor file {cursorsPath} is damaged ({e.Message})";
            }
        }
        var corruptions = new List<QueueCorruption>();
        bool intentDamaged = _intent.CorruptionReport is not null;
        List<Location> lost = _intent.Snapshot();
        bool clean = _intent.IsEmpty;

        // The checkpoint of in-memory records written by the last clean close.
        var resident = new List<Transaction>();
        string residentPath = Path.Combine(_dir, ResidentFile);
        if (PathProbe.Attributes(residentPath) is not null)
        {
            using var reader = new SegmentReader(residentPath, SegmentFormat.FileHeaderSize);
            while (reader.Next() is { } t)
            {
                resident.Add(t);
            }
            if (reader.Problem is not null)
            {
                corruptions.Add(new QueueCorruption(residentPath, reader.Offset, reader.Problem, resident.LastOrDefault()?.Seq ?? 0, false));
            }
        }

        long minHead = long.MaxValue;
        var names = cursorNames.ToList();
        foreach (string name in names)
        {
            if (saved?.Cursors.TryGetValue(name, out CursorState? cs) == true && cs.Active)
            {
                minHead = Math.Min(minHead, cs.Head);
            }
        }
        if (minHead == long.MaxValue)
        {
            minHead = saved?.NextSeq - 1 ?? 0;
        }

        long maxSeq = Math.Max(0, (saved?.NextSeq ?? 1) - 1);
        long firstRecovered = long.MaxValue;
        long present = resident.Count(t => t.Seq > minHead); // records some active cursor still needs
        long recovered = 0;
        int ri = 0;
        var files = Directory.EnumerateFiles(_dir, "seg-*.cmq")
            .Select(f => (Path: f, Ok: SegmentFormat.TryParseFileName(Path.GetFileName(f), out long first), First: first))
            .Where(f => f.Ok)
            .OrderBy(f => f.First)
            .ToList();
        for (int fi = 0; fi < files.Count; fi++)
        {
            string file = files[fi].Path;
            var segment = new Segment { Path = file, FirstSeq = files[fi].First, LastSeq = files[fi].First - 1, Length = new FileInfo(file).Length };
            _segments.Add(segment);
            _diskBytes += segment.Length;
            if (!HasValidHeader(file))
            {
                corruptions.Add(new QueueCorruption(file, 0, "bad segment header", 0, false));
                continue;
            }
            // Records are checked and indexed here, their data left on disk: each is read into room in the read-back
            // arena, given back at once, so a large backlog reuses a few slabs instead of an array per record. (The
            // index keeps rename records, which carry no data: nothing kept reads the room once it is given back.)
            using var reader = new SegmentReader(file, SegmentFormat.FileHeaderSize, _readBack);
            long lastGood = 0;
            while (true)
            {
                long offset = reader.Offset;
                Transaction? t = reader.Next();
                if (t is null)
                {
                    break;
                }
                try
                {
                    lastGood = t.Seq;
                    segment.LastSeq = t.Seq;
                    maxSeq = Math.Max(maxSeq, t.Seq);
                    if (t.Seq <= minHead)
                    {
                        continue;
                    }
                    while (ri < resident.Count && resident[ri].Seq < t.Seq)
                    {
                        AddRecovered(resident[ri++]);
                    }
                    firstRecovered = Math.Min(firstRecovered, t.Seq);
                    present++;
                    _currentSegment = segment;
                    AddToRuns(t, spilled: true, offset, (int)(reader.Offset - offset));
                    TrackIntent(t);
                    TrackWhole(t);
                    recovered++;
                }
                finally
                {
                    t.Owner?.Release();
                }
            }
            if (reader.Problem is not null)
            {
                bool torn = reader.Torn && fi == files.Count - 1;
                corruptions.Add(new QueueCorruption(file, reader.Offset, reader.Problem, lastGood, torn));
            }
        }
        while (ri < resident.Count)
        {
            AddRecovered(resident[ri++]);
        }
        recovered += resident.Count;
        maxSeq = Math.Max(maxSeq, resident.LastOrDefault()?.Seq ?? 0);
        firstRecovered = Math.Min(firstRecovered, resident.FirstOrDefault()?.Seq ?? long.MaxValue);
        _currentSegment = null;
        _nextSeq = maxSeq + 1;

        long expected = _nextSeq - 1 - minHead;
        if (saved is { Closed: true } && corruptions.Count == 0 && present < expected)
        {
            // Sequence numbers are dense, and a clean close keeps every record an active cursor still needs (spilled,
            // or checkpointed) and saves the heads exactly: fewer means segment files went missing.
            corruptions.Add(new QueueCorruption(_dir, 0,
                $"{expected - present} record(s) between {minHead + 1} and {_nextSeq - 1} are missing (segment files deleted?)", minHead, false));
        }
        if (saved is null && recovered > 0)
        {
            // Records kept but no cursor file to say how far each remote got (deleted, or damaged and read above):
            // every cursor starts before the oldest record kept. A record sent twice lands the same way twice; one
            // skipped would leave a remote that is called Synchronised without it.
            cursorsLost ??= $"queue cursor file {cursorsPath} is missing";
        }
        long unknownHead = saved is null && recovered > 0 ? firstRecovered - 1 : _nextSeq - 1;
        Id = LoadOrMakeId();
        foreach (string name in names)
        {
            var c = new Cursor { Name = name, Head = unknownHead };
            if (saved?.Cursors.TryGetValue(name, out CursorState? cs) == true)
            {
                c.Head = Math.Min(cs.Head, _nextSeq - 1);
                c.Active = cs.Active;
            }
            _cursors[name] = c;
        }

        // In-memory records again: cover them with intent bits before the checkpoint goes.
        foreach (Transaction t in resident)
        {
            TrackIntent(t, persist: true);
        }
        File.Delete(residentPath);
        ReleaseLocked();
        SaveCursorsLocked();
        Recovery = new QueueRecovery
        {
            CleanShutdown = clean && corruptions.Count == 0,
            Corruptions = corruptions,
            RecoveredRecords = recovered,
            LostLocations = lost,
            LostUnknown = intentDamaged,
            CursorsLost = cursorsLost is null ? null : recovered == 0 ? $"{cursorsLost}: no records were kept, so none is sent again"
                : $"{cursorsLost}: every remote facet is sent the {recovered} record(s) kept again, from the oldest",
        };
    }

    /// <summary>
    /// Remembers which locations a record touches and by which sequence number, so a later release can name them;
    /// with <paramref name="persist"/> the bits are also written to the intent map file.
    /// </summary>
    private void TrackIntent(Transaction t, bool persist = false)
    {
        var (first, last) = t.Blocks(_blockSize);
        for (long b = first; b <= last; b++)
        {
            var loc = new Location(t.FileId, b);
            if (persist)
            {
                SetIntentLocked(loc);
            }
            _intentSeq[loc] = t.Seq;
        }
    }

    /// <summary>Remembers the newest record that replaces a file's content, so a later release can name the whole file.</summary>
    private void TrackWhole(Transaction t)
    {
        if (t.ReplacesContent)
        {
            _wholeSeq[t.FileId] = t.Seq;
        }
    }

    private void TrackIntentForAppend(Transaction t)
    {
        var (first, last) = t.Blocks(_blockSize);
        for (long b = first; b <= last; b++)
        {
            var loc = new Location(t.FileId, b);
            ref long seq = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_intentSeq, loc, out bool existed);
            if (!existed || seq < t.Seq)
            {
                if (!existed || seq != t.Seq)
                {
                    SetIntentLocked(loc);
                }
                seq = t.Seq;
            }
        }
    }

    /// <summary>
    /// Sets an intent bit, and when that appended a mark to the intent map, remembers its number for the file: a
    /// file's barrier flushes the intent map only when a mark of that file's is not yet on the disk (a large copy into
    /// another file appends marks all along).
    /// </summary>
    private void SetIntentLocked(Location loc)
    {
        if (_intent.Set(loc))
        {
            _intentMarks.Set(loc.FileId, _intent.MarksAppended, _intentCovered);
        }
    }

    private void AddRecovered(Transaction t)
    {
        AddToRuns(t, spilled: false, 0, 0);
        _memoryBytes += t.Data.Length + RecordOverhead;
        _tailBytesTotal += t.Data.Length;
    }

    private static bool HasValidHeader(string file)
    {
        Span<byte> header = stackalloc byte[SegmentFormat.FileHeaderSize];
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return fs.Read(header) == SegmentFormat.FileHeaderSize && header[..8].SequenceEqual(SegmentFormat.FileMagic);
    }
}
