using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Queue;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Volume;

public sealed partial class MirrorVolume
{
    /// <summary>
    /// Writes bytes to a file: to every Synchronised local facet in parallel and into the queue. Returns (the
    /// acknowledgement) once every local facet has the bytes in the OS cache and the queue record or the intent
    /// bits covering them have reached a file. Never waits for a remote facet.
    /// </summary>
    public async ValueTask WriteAsync(long fileId, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        if (offset < 0)
        {
            throw new MirrorException(MirrorError.InvalidArgument, $"write at negative offset {offset}");
        }
        FileNode node = GetFile(fileId);
        if (data.IsEmpty)
        {
            return;
        }
        await WaitForQueueSpaceAsync(data.Length, cancellationToken).ConfigureAwait(false);
        await node.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            EnterActivity(fileId, offset, data.Length);
            MarkIntent(fileId, offset, data.Length);
            FacetSlot[]? syncing = RouteToSyncingLocals(fileId, offset, data.Length);
            await OnLocalDataAsync(node, (f, r, ct) => f.WriteAsync(r, offset, data, ct), offset, data.Length, cancellationToken).ConfigureAwait(false);
            await ApplyToSyncingAsync(syncing, node, (f, r, ct) => f.WriteAsync(r, offset, data, ct), offset, data.Length, cancellationToken).ConfigureAwait(false);
            long seq = Enqueue(new Transaction { Kind = TransactionKind.Write, FileId = fileId, Offset = offset, Data = data }, node);
            await CompleteDegradedAsync(seq, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            LeaveActivity(fileId, offset, data.Length);
            node.Gate.Release();
        }
    }

    /// <summary>Sets a file's length (truncate or extend with zeros).</summary>
    public async ValueTask SetLengthAsync(long fileId, long length, CancellationToken cancellationToken = default)
    {
        if (length < 0)
        {
            throw new MirrorException(MirrorError.InvalidArgument, $"negative length {length}");
        }
        FileNode node = GetFile(fileId);
        await node.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Up to the new length: after a shrink and a regrowth to the old length, only the bytes (zeros here,
            // the old ones there) tell the facets apart. A truncation to nothing logs nothing.
            EnterActivity(fileId, 0, length);
            MarkNamespaceOnIdleLocals();
            await OnLocalDataAsync(node, (f, r, ct) => f.SetLengthAsync(r, length, ct), length, 0, cancellationToken).ConfigureAwait(false);
            await ApplyToSyncingAsync(_syncingLocals, node, (f, r, ct) => f.SetLengthAsync(r, length, ct), length, 0, cancellationToken).ConfigureAwait(false);
            long seq = Enqueue(new Transaction { Kind = TransactionKind.SetLength, FileId = fileId, Length = length }, node);
            await CompleteDegradedAsync(seq, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            LeaveActivity(fileId, 0, length);
            node.Gate.Release();
        }
    }

    /// <summary>
    /// Makes the bytes of [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>) that lie
    /// within the file read as zeros, keeping its length (fallocate's hole punching and zeroing of a range). With
    /// <paramref name="deallocate"/> the local facets free the range's space (a hole); without, they keep it allocated.
    /// Covered like a write: intent bits before the local facets change, a queue record (or dirty bits) after.
    /// </summary>
    public async ValueTask ZeroRangeAsync(long fileId, long offset, long length, bool deallocate, CancellationToken cancellationToken = default)
    {
        if (offset < 0 || length <= 0 || offset > long.MaxValue - length)
        {
            throw new MirrorException(MirrorError.InvalidArgument, $"zeroing [{offset}, +{length}): not a valid range");
        }
        FileNode node = GetFile(fileId);
        await node.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            EnterActivity(fileId, offset, length);
            MarkIntent(fileId, offset, length);
            FacetSlot[]? syncing = RouteToSyncingLocals(fileId, offset, length);
            await OnLocalDataAsync(node, (f, r, ct) => f.ZeroRangeAsync(r, offset, length, deallocate, ct), offset, length, cancellationToken).ConfigureAwait(false);
            await ApplyToSyncingAsync(syncing, node, (f, r, ct) => f.ZeroRangeAsync(r, offset, length, deallocate, ct), offset, length, cancellationToken).ConfigureAwait(false);
            long seq = Enqueue(new Transaction { Kind = TransactionKind.ZeroRange, FileId = fileId, Offset = offset, Length = length }, node);
            await CompleteDegradedAsync(seq, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            LeaveActivity(fileId, offset, length);
            node.Gate.Release();
        }
    }

    /// <summary>
    /// Reserves the space of a range on every Synchronised local facet (<c>posix_fallocate</c>, fallocate mode 0):
    /// writes into it then do not fail for lack of space there. Neither the length nor the bytes change, so nothing
    /// is queued: remotes have no space to set aside. A facet that cannot reserve it while another can is taken
    /// offline, as for a failed write; when none can, the caller gets the error (a full disk: no space).
    /// </summary>
    public async ValueTask AllocateAsync(long fileId, long offset, long length, CancellationToken cancellationToken = default)
    {
        if (offset < 0 || length <= 0 || offset > long.MaxValue - length)
        {
            throw new MirrorException(MirrorError.InvalidArgument, $"reserving [{offset}, +{length}): not a valid range");
        }
        FileNode node = GetFile(fileId);
        await node.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_readyLocals.Length > 0)
            {
                await OnLocalDataAsync(node, (f, r, ct) => f.AllocateAsync(r, offset, length, ct), offset, length, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            node.Gate.Release();
        }
    }

    /// <summary>
    /// Before a write or a zeroed range reaches any facet: the intent bits name its blocks for the remotes the queue
    /// feeds, so a crash before its record is appended still leaves them named. A queue whose storage fails here
    /// switches the volume to its failed-queue mode.
    /// </summary>
    private void MarkIntent(long fileId, long offset, long length)
    {
        if (_remotes.Length > 0 && _queue is not null && !_queueFailed)
        {
            try
            {
                _queue.MarkIntent(fileId, offset, length);
            }
            catch (Exception e) when (IsQueueStorageFailure(e))
            {
                OnQueueStorageFailed(e, underSequencer: false);
            }
        }
    }

    /// <summary>Sets the length of the file at <paramref name="path"/>.</summary>
    public ValueTask TruncateAsync(string path, long length, CancellationToken cancellationToken = default)
        => SetLengthAsync(Resolve(path).Id, length, cancellationToken);

    /// <summary>
    /// Reads from a local facet, rotating across the Synchronised ones. A facet that fails the read is skipped and,
    /// once another facet has served the bytes, repaired by writing them back (read repair); a facet whose repair
    /// fails is taken offline.
    /// </summary>
    public async ValueTask<int> ReadAsync(long fileId, long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (offset < 0)
        {
            throw new MirrorException(MirrorError.InvalidArgument, $"read at negative offset {offset}");
        }
        FileNode node = GetFile(fileId);
        FacetSlot[] locals = _readyLocals;
        if (locals.Length == 0)
        {
            return await DegradedReadAsync(node, offset, buffer, cancellationToken).ConfigureAwait(false);
        }
        int start = (int)((uint)Interlocked.Increment(ref _readRotor) % (uint)locals.Length);
        List<FacetSlot>? failed = null;
        MirrorException? lastError = null;
        for (int i = 0; i < locals.Length; i++)
        {
            FacetSlot s = locals[(start + i) % locals.Length];
            try
            {
                int n = await s.Facet.ReadAsync(new FileRef(fileId, _files.PathOf(node)), offset, buffer, cancellationToken).ConfigureAwait(false);
                if (failed is not null)
                {
                    await RepairAsync(node, failed, s, offset, buffer.Length, cancellationToken).ConfigureAwait(false);
                }
                return n;
            }
            catch (MirrorException e) when (e.Error is MirrorError.IoError or MirrorError.Unavailable)
            {
                (failed ??= []).Add(s);
                lastError = e;
            }
        }
        if (lastError!.Error == MirrorError.IoError
            && await TryRepairFromRemoteAsync(node, failed!, offset, buffer, cancellationToken).ConfigureAwait(false) is { } repaired)
        {
            return repaired;
        }
        foreach (FacetSlot s in failed!)
        {
            MarkMissed(s, fileId, offset, buffer.Length);
            FailLocal(s, lastError!);
        }
        return await DegradedReadAsync(node, offset, buffer, cancellationToken,
            new MirrorException(MirrorError.IoError, $"file id {fileId}: every local facet failed the read at offset {offset}: {lastError!.Message}", lastError)).ConfigureAwait(false);
    }

    /// <summary>FUSE's flush (sent at every close): not a barrier, so nothing to do beyond what a write already did.</summary>
    public static ValueTask FlushAsync(long fileId) => ValueTask.CompletedTask;

    /// <summary>
    /// The whole volume's barrier (syncfs): returns once everything acknowledged before the call — every file's local
    /// data, queue records, intent and dirty bits, the table of names — is on stable storage. Concurrent callers share
    /// one flush (group commit).
    /// </summary>
    public async ValueTask SyncAsync(CancellationToken cancellationToken = default)
    {
        long ticket = Interlocked.Increment(ref _barrierTicket);
        await _barrierGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _barrierCompleted) >= ticket)
            {
                return; // a flush that started after this call arrived has already covered it
            }
            long covers = Volatile.Read(ref _barrierTicket);
            await SyncLocalsAsync(null, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _barrierCompleted, covers);
        }
        finally
        {
            _barrierGate.Release();
        }
    }

    /// <summary>
    /// One file's barrier (fsync and fdatasync of a file, fsync of a directory): returns once the bytes written to
    /// <paramref name="fileId"/> and everything that covers them or names it — queue records, intent and dirty bits,
    /// the table of names, the local facets' changed folders — are on stable storage, as DESIGN.md's barrier asks.
    /// Other files' bytes are not waited for: a program that fsyncs a small file while another writes a large one
    /// waits for its own file (the local facets flush each file's handle alone). The record files are logs, flushed
    /// whole, shared by concurrent callers.
    /// </summary>
    public async ValueTask SyncFileAsync(long fileId, CancellationToken cancellationToken = default)
    {
        FileNode? node = _files.Get(fileId);
        if (node is null || _readyLocals.Length == 0)
        {
            // Gone meanwhile (nothing of its own left to flush), or no local facet: the whole barrier, which knows
            // how to flush a remote serving in their place.
            await SyncAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        await SyncLocalsAsync(new FileRef(fileId, _files.PathOf(node)), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Flushes the record files and, meanwhile, every Synchronised local facet (all of its files, or only
    /// <paramref name="file"/>): independent fsyncs in flight together, which the file system can commit in one
    /// journal transaction. Most barriers find every record file flushed already (a data write adds a record file
    /// entry only when it spills, or first touches a block); then nothing is handed to another thread, and the
    /// barrier costs the local facets' fsyncs alone.
    /// </summary>
    private async ValueTask SyncLocalsAsync(FileRef? file, CancellationToken cancellationToken)
    {
        Task records = SyncRecordsAsync(file?.Id, cancellationToken);
        FacetSlot[] locals = _readyLocals;
        var flushes = new Task[locals.Length];
        for (int i = 0; i < locals.Length; i++)
        {
            flushes[i] = (file is { } f ? locals[i].Facet.FlushFileAsync(f, cancellationToken) : locals[i].Facet.FlushAsync(cancellationToken)).AsTask();
        }
        bool failed = false;
        foreach (var (slot, task) in locals.Zip(flushes))
        {
            try
            {
                await task.ConfigureAwait(false);
            }
            catch (MirrorException e) when (e.Error is MirrorError.IoError or MirrorError.Unavailable)
            {
                FailLocal(slot, e);
                failed = true;
            }
        }
        if (_readyLocals.Length == 0)
        {
            if (!CanDegrade())
            {
                throw NoLocal("fsync");
            }
            FacetSlot remote = await CaughtUpRemoteAsync(cancellationToken).ConfigureAwait(false);
            await remote.Facet.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        await records.ConfigureAwait(false);
        if (failed)
        {
            // A facet that failed its flush marked its dirty map meanwhile: those marks reach the disk too.
            await SyncRecordsAsync(file?.Id, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The record files' share of a barrier (queue segment and intent map, dirty maps, table of names), group
    /// committed: a caller returns once a whole flush that began after it arrived has completed. A file's barrier
    /// (<paramref name="fileId"/>) flushes the queue's segment only when that file needs it
    /// (<see cref="TransactionQueue.SegmentNeededFor"/>); such a partial flush covers that caller alone. Runs on the
    /// caller's thread up to the flush, which goes to another thread only when some record file holds something
    /// unflushed.
    /// </summary>
    private async Task SyncRecordsAsync(long? fileId, CancellationToken cancellationToken)
    {
        long ticket = Interlocked.Increment(ref _recordsTicket);
        await _recordsGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _recordsCompleted) >= ticket)
            {
                return;
            }
            long covers = Volatile.Read(ref _recordsTicket);
            bool whole = RecordsNeedFlush(fileId)
                ? await Task.Run(() => FlushRecords(fileId), CancellationToken.None).ConfigureAwait(false)
                : fileId is null || !RecordsNeedFlush(null); // nothing this file needs; the rest may hold what others do
            if (whole)
            {
                Volatile.Write(ref _recordsCompleted, covers);
            }
        }
        finally
        {
            _recordsGate.Release();
        }
    }

    /// <summary>
    /// True when a record file the barrier covers (queue, intent map, dirty maps, table of names) holds something not
    /// yet flushed; for one file's barrier, something that file needs.
    /// </summary>
    private bool RecordsNeedFlush(long? fileId)
    {
        if (_queue is not null && !_queueFailed && (fileId is { } id ? _queue.HasUnflushedFor(id) : _queue.HasUnflushed))
        {
            return true;
        }
        foreach (FacetSlot s in _slots)
        {
            if (s.Dirty.HasUnflushedMarks)
            {
                return true;
            }
        }
        return _files.HasUnflushed;
    }

    /// <summary>
    /// The barrier's share for the volume's own records: queue segment and intent map, dirty maps, table of names.
    /// Returns false when, for one file's barrier, the queue's segment was left as it was.
    /// </summary>
    private bool FlushRecords(long? fileId)
    {
        bool whole = true;
        if (_queue is not null && !_queueFailed)
        {
            try
            {
                if (fileId is { } id)
                {
                    whole = _queue.BarrierFor(id);
                }
                else
                {
                    _queue.Barrier();
                }
            }
            catch (Exception e) when (IsQueueStorageFailure(e))
            {
                OnQueueStorageFailed(e, underSequencer: false);
            }
        }
        try
        {
            foreach (FacetSlot s in _slots)
            {
                s.Dirty.Flush();
            }
            _files.Flush();
        }
        catch (Exception e) when ((e is IOException or UnauthorizedAccessException) && StateLostRemoteServes)
        {
            // The state folder's disk is gone with the local facets and the queue: every change acknowledged since is
            // on a remote written synchronously (flushed by this barrier), which is what the barrier promises.
            _log.LogError("the state folder {StateDir} cannot be written ({Message}); the drive runs from remote facet '{Remote}', which holds every acknowledged change",
                _options.StateDir, e.Message, DegradedRemote()?.Name);
        }
        return whole;
    }

    /// <summary>
    /// True when no local facet serves, the queue's storage has failed, and a remote written synchronously holds every
    /// acknowledged change: the state folder's records (maps, table of names) then cover nothing the remote lacks.
    /// </summary>
    private bool StateLostRemoteServes => _readyLocals.Length == 0 && _queueFailed && DegradedRemote() is not null;

    private FileNode GetFile(long fileId)
    {
        FileNode node = _files.Get(fileId) ?? throw new MirrorException(MirrorError.NotFound, $"file id {fileId}: no such file");
        return node.Kind switch
        {
            NodeKind.Directory => throw new MirrorException(MirrorError.IsDirectory, $"file id {fileId}: is a directory"),
            NodeKind.Symlink => throw new MirrorException(MirrorError.InvalidArgument, $"file id {fileId}: is a symbolic link, which holds no data (read its target with ReadLinkAsync)"),
            _ => node,
        };
    }

    /// <summary>
    /// Runs a data change on every Synchronised local facet, in parallel when there are several. A facet that fails
    /// while another succeeds is taken offline with the locations recorded in its dirty map; the caller sees success.
    /// When all fail, the caller gets the error (a full disk stays a full disk, and no facet is taken offline for it).
    /// </summary>
    private async ValueTask OnLocalDataAsync(FileNode node, Func<IFacet, FileRef, CancellationToken, ValueTask> change, long offset, long length,
        CancellationToken cancellationToken)
    {
        FacetSlot[] locals = _readyLocals;
        if (locals.Length == 0)
        {
            if (!CanDegrade())
            {
                throw NoLocal($"write of {_files.PathOf(node)}");
            }
            MarkMissedOnLocals(node.Id, offset, length);
            return;
        }
        var file = new FileRef(node.Id, _files.PathOf(node));
        if (locals.Length == 1)
        {
            try
            {
                await change(locals[0].Facet, file, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (MirrorException e) when (e.Error is not (MirrorError.IoError or MirrorError.Unavailable))
            {
                throw;
            }
            catch (MirrorException e)
            {
                MarkMissed(locals[0], node.Id, offset, length);
                FailLocal(locals[0], e);
                if (CanDegrade())
                {
                    return; // the seed's Figure 4: the remote facet takes the write synchronously
                }
                throw new MirrorException(MirrorError.IoError, $"{file.Path}: the only local facet '{locals[0].Name}' failed: {e.Message}", e);
            }
        }
        var tasks = new Task[locals.Length];
        for (int i = 0; i < locals.Length; i++)
        {
            IFacet f = locals[i].Facet;
            tasks[i] = i == 0 ? change(f, file, cancellationToken).AsTask() : Task.Run(() => change(f, file, cancellationToken).AsTask(), cancellationToken);
        }
        int ok = 0;
        MirrorException? first = null;
        for (int i = 0; i < tasks.Length; i++)
        {
            try
            {
                await tasks[i].ConfigureAwait(false);
                ok++;
            }
            catch (MirrorException e)
            {
                first ??= e;
            }
        }
        if (ok == 0)
        {
            if (first!.Error is MirrorError.IoError or MirrorError.Unavailable)
            {
                foreach (FacetSlot s in locals)
                {
                    MarkMissed(s, node.Id, offset, length);
                    FailLocal(s, first);
                }
                if (CanDegrade())
                {
                    return;
                }
            }
            throw first;
        }
        for (int i = 0; i < tasks.Length; i++)
        {
            if (tasks[i].IsFaulted)
            {
                MarkMissed(locals[i], node.Id, offset, length);
                FailLocal(locals[i], (tasks[i].Exception!.InnerException as MirrorException)!);
            }
        }
    }

    private void MarkMissed(FacetSlot slot, long fileId, long offset, long length)
    {
        long first = offset / BlockSize;
        long last = length == 0 ? first : (offset + length - 1) / BlockSize;
        try
        {
            slot.Dirty.SetRange(fileId, first, last);
        }
        catch (Exception e) when ((e is IOException or UnauthorizedAccessException) && StateLostRemoteServes)
        {
            // Marked in memory all the same; see StateLostRemoteServes.
            _log.LogDebug("facet {Facet}: dirty map not written ({Message})", slot.Name, e.Message);
        }
    }

    /// <summary>
    /// Read repair when every local facet failed a read with an I/O error (a bad sector, not a disk gone): the bytes
    /// come from a remote, with the queue's newer changes laid over, and are written back to the local facets, as
    /// seed 000's read repair does from another facet. A facet that takes them stays Synchronised (a disk remaps a bad
    /// sector when it is written); one that fails the write is taken offline. Null when no remote can give the bytes
    /// at once: the caller then takes the facets offline and serves the read degraded, as before.
    /// </summary>
    private async ValueTask<int?> TryRepairFromRemoteAsync(FileNode node, List<FacetSlot> failed, long offset, Memory<byte> buffer,
        CancellationToken cancellationToken)
    {
        // Under the file's gate: no write of this file can land between the remote's bytes and the write-back.
        await node.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (await ReadFromRemoteAtOnceAsync(node, offset, buffer, cancellationToken).ConfigureAwait(false) is not { } n)
            {
                return null;
            }
            await WriteBackAsync(node, new FileRef(node.Id, _files.PathOf(node)), failed, offset, buffer[..n], cancellationToken).ConfigureAwait(false);
            return n;
        }
        finally
        {
            node.Gate.Release();
        }
    }

    private async ValueTask RepairAsync(FileNode node, List<FacetSlot> failed, FacetSlot good, long offset, int length, CancellationToken cancellationToken)
    {
        // Under the file's gate, so a concurrent write cannot be overwritten by the older bytes being repaired.
        await node.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var file = new FileRef(node.Id, _files.PathOf(node));
            byte[] fresh = new byte[length];
            int n = await good.Facet.ReadAsync(file, offset, fresh, cancellationToken).ConfigureAwait(false);
            await WriteBackAsync(node, file, failed, offset, fresh.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            node.Gate.Release();
        }
    }

    /// <summary>
    /// Read repair's second half, under the file's gate: the good bytes written to each facet that failed to read
    /// them; one that fails the write too misses them (its dirty map says so) and is taken offline.
    /// </summary>
    private async ValueTask WriteBackAsync(FileNode node, FileRef file, List<FacetSlot> failed, long offset, ReadOnlyMemory<byte> bytes,
        CancellationToken cancellationToken)
    {
        foreach (FacetSlot s in failed)
        {
            try
            {
                await s.Facet.WriteAsync(file, offset, bytes, cancellationToken).ConfigureAwait(false);
                _log.LogRepair(s.Name, file.Path, offset, bytes.Length);
            }
            catch (MirrorException e)
            {
                MarkMissed(s, node.Id, offset, bytes.Length);
                FailLocal(s, e);
            }
        }
    }

    /// <summary>Appends a transaction for the remote facets (ordered with renames by the sequencer lock).</summary>
    private long Enqueue(Transaction t, FileNode node)
    {
        if (_remotes.Length == 0)
        {
            return 0;
        }
        lock (_sequencer)
        {
            // The path in force now, in the same order as renames (which also append under the sequencer).
            if (!node.Deleted && t.Kind is TransactionKind.Write or TransactionKind.SetLength or TransactionKind.ZeroRange)
            {
                t.Path = _files.PathOf(node);
            }
            long seq = AppendLocked(t);
            node.LastSeq = seq;
            return seq;
        }
    }

    /// <summary>
    /// Under the sequencer: records the transaction for each remote facet — in the queue for those it feeds, in the
    /// dirty map for those released (NotSynchronised). A full queue releases the <c>unsync</c> facets first.
    /// </summary>
    private long AppendLocked(Transaction t)
    {
        FacetSlot[] remotes = _remotes;
        if (remotes.Length == 0 || _queue is null)
        {
            return 0;
        }
        if (_queueFailed)
        {
            return AppendWithoutQueueLocked(t);
        }
        bool anyActive = false;
        foreach (FacetSlot r in remotes)
        {
            if (r.QueueActive)
            {
                anyActive = true;
            }
            else
            {
                MarkChange(r, t);
            }
        }
        if (!anyActive)
        {
            if (t.ChangesRange)
            {
                _queue.EndIntent(t.FileId, t.Range.Offset, t.Range.Length);
            }
            return 0;
        }
        long seq;
        bool appended;
        try
        {
            appended = _queue.TryAppend(t, out seq);
        }
        catch (Exception e) when (IsQueueStorageFailure(e))
        {
            OnQueueStorageFailed(e, underSequencer: true);
            return AppendWithoutQueueLocked(t); // the queue's storage just failed
        }
        if (appended)
        {
            SignalReplicators();
            return seq;
        }
        foreach (FacetSlot r in remotes.Where(r => r.Options.Overflow == OverflowPolicy.Unsync && r.QueueActive))
        {
            _queue.Release(r.Name, r.Dirty);
            r.QueueActive = false;
            SetState(r, FacetState.NotSynchronised, $"queue full (queue.diskLimit {_options.Queue.DiskLimit} bytes): released, dirty map records what it missed");
        }
        if (remotes.Any(r => r.QueueActive))
        {
            // Only block-policy facets remain; the writer already waited for space before touching the local facets,
            // so the record goes in over the limit rather than be lost.
            try
            {
                seq = _queue.ForceAppend(t);
            }
            catch (Exception e) when (IsQueueStorageFailure(e))
            {
                OnQueueStorageFailed(e, underSequencer: true);
                return AppendWithoutQueueLocked(t);
            }
            SignalReplicators();
            return seq;
        }
        return AppendLocked(t);
    }

    /// <summary>Under the <c>block</c> policy, waits (up to <c>overflowTimeout</c>) for the queue to have room before a write starts.</summary>
    private async ValueTask WaitForQueueSpaceAsync(long bytes, CancellationToken cancellationToken)
    {
        if (_queue is null || _queue.DiskBytes + bytes + 4096 <= _options.Queue.DiskLimit)
        {
            return;
        }
        FacetSlot[] blockers = [.. _remotes.Where(r => r.Options.Overflow == OverflowPolicy.Block && _queue.IsActive(r.Name))];
        if (blockers.Length == 0 || _queue.MemoryBytes + bytes < _options.Queue.MemoryLimit / 2)
        {
            return;
        }
        TimeSpan timeout = blockers.Min(b => b.Options.OverflowTimeout);
        var deadline = DateTime.UtcNow + timeout;
        while (_queue.DiskBytes + bytes + 4096 > _options.Queue.DiskLimit)
        {
            TimeSpan left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new MirrorException(MirrorError.NoSpace,
                    $"the queue is full (queue.diskLimit {_options.Queue.DiskLimit} bytes) and facet '{blockers[0].Name}' (overflow: block) "
                    + $"did not drain within {timeout.TotalSeconds:0.#} s; check its link, raise queue.diskLimit, or set overflow to unsync");
            }
            _spaceFreed.Reset();
            await Task.Run(() => _spaceFreed.Wait(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200), cancellationToken), cancellationToken).ConfigureAwait(false);
        }
    }
}
