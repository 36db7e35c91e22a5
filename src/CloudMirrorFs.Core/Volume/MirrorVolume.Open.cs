using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudMirrorFs.Volume;

public sealed partial class MirrorVolume
{
    /// <summary>
    /// Opens the volume (creating its state on first use): takes the volume lock, opens every facet, restores facet
    /// states, replays the queue and moves what a crash lost into the affected facets' dirty maps.
    /// </summary>
    /// <param name="options">Validated options.</param>
    /// <param name="facetFactory">Builds a facet from its options; null uses <see cref="FacetFactory.Create"/>.</param>
    /// <param name="loggerFactory">Logging; null logs nothing.</param>
    /// <param name="runtime">Whether replicators start, and their pacing.</param>
    /// <param name="cancellationToken">Cancels the open.</param>
    public static async Task<MirrorVolume> OpenAsync(
        VolumeOptions options,
        Func<FacetOptions, IFacet>? facetFactory = null,
        ILoggerFactory? loggerFactory = null,
        VolumeRuntimeOptions? runtime = null,
        CancellationToken cancellationToken = default)
    {
        runtime ??= new VolumeRuntimeOptions();
        ArgumentNullException.ThrowIfNull(options);
        ILogger log = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<MirrorVolume>();
        facetFactory ??= o => FacetFactory.Create(o, options);
        Directory.CreateDirectory(options.StateDir);
        FileStream lockFile = TakeLock(options.StateDir);
        var slots = new List<FacetSlot>();
        try
        {
            foreach (FacetOptions fo in options.Facets)
            {
                DirtyMap dirty = DirtyMap.Open(Path.Combine(options.StateDir, "dirty", fo.Name + ".map"));
                if (dirty.CorruptionReport is not null)
                {
                    log.LogError("{Report}", dirty.CorruptionReport);
                }
                slots.Add(new FacetSlot(facetFactory(fo), fo, dirty));
            }
            var volume = new MirrorVolume(options, [.. slots], log) { _lockFile = lockFile, _facetFactory = facetFactory };
            try
            {
                await volume.OpenCoreAsync(cancellationToken).ConfigureAwait(false);
                volume.StartActivityTrimmer(runtime.ActivityTrimPeriod);
                if (runtime.Replicate)
                {
                    volume._backgroundWork = true;
                    volume.StartReplication(runtime.Replication);
                    volume.StartLocalResyncs();
                }
            }
            catch
            {
                await volume.DisposeAsync().ConfigureAwait(false);
                throw;
            }
            return volume;
        }
        catch
        {
            foreach (FacetSlot s in slots)
            {
                s.Dirty.Dispose();
            }
            lockFile.Dispose();
            throw;
        }
    }

    private static FileStream TakeLock(string stateDir)
    {
        string path = Path.Combine(stateDir, "volume.lock");
        try
        {
            // FileShare.None is an OS lock (flock on Unix): released by the kernel when the process dies, even by SIGKILL.
            var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
            fs.SetLength(0);
            fs.Write(System.Text.Encoding.UTF8.GetBytes($"{Environment.ProcessId}\n"));
            return fs;
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            string holder = "";
            try
            {
                using var r = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var sr = new StreamReader(r);
                holder = $" (process {sr.ReadLine()?.Trim()})";
            }
            catch (IOException)
            {
            }
            throw new MirrorException(MirrorError.AccessDenied,
                $"volume {stateDir} is in use by another cmfs instance{holder}; stop it first, or talk to it with 'cmfs status'", e);
        }
    }

    private string RunningMarker => Path.Combine(_options.StateDir, "running");

    private async Task OpenCoreAsync(CancellationToken cancellationToken)
    {
        Dictionary<string, FacetStateStore.Entry>? saved = FacetStateStore.Load(_options.StateDir);
        // Present at open: the previous run ended without closing (SIGKILL, crash, power loss).
        bool unclean = PathProbe.Attributes(RunningMarker) is not null;
        // The boot the previous run started in: another one now means the machine went down under it (power loss,
        // kernel crash), so what was only in the OS cache is gone too. Unknown (an older build's marker, an OS that
        // gives no boot id) counts as another.
        string? startedInBoot = unclean ? ReadBootOfMarker() : null;
        if (_slots.Length > 1)
        {
            _activity = ActivityLog.Open(Path.Combine(_options.StateDir, "activity.map"), _options.BlockSize);
            if (_activity.Damaged is { } damagedLog)
            {
                _log.LogError("{Report}", damagedLog);
            }
            unclean |= _activity.Recovered is not { Count: 0 }; // a clean close empties it
        }
        bool machineRestarted = unclean && (startedInBoot is null || BootId.Current is null || startedInBoot != BootId.Current);
        // A clean close saves the states last: a local file changed at or after that was changed outside cmfs.
        DateTime? closedAt = saved is not null && !unclean ? File.GetLastWriteTimeUtc(FacetStateStore.FilePath(_options.StateDir)) : null;
        foreach (FacetSlot slot in _slots)
        {
            if (saved?.TryGetValue(slot.Name, out FacetStateStore.Entry? e) == true && e.Kind == slot.Options.Kind && e.Path == slot.Options.Path)
            {
                slot.State = e.State == FacetState.BeingSynchronised ? FacetState.NotSynchronised : e.State;
                slot.Reason = e.Reason;
                slot.StoreIdentity = e.StoreIdentity;
                slot.QueueId = e.QueueId;
                slot.StoreImage = e.StoreImage;
                slot.UnqueuedThrough = e.UnqueuedThrough;
                slot.Held = e.Held;
                if (IFacetDecorator.Unwrap(slot.Facet) is IFolderHome home)
                {
                    home.FileSystem = e.FileSystem; // its open refuses a folder whose disk is not mounted
                }
            }
            else if (saved is not null)
            {
                // A facet added to an existing volume (or pointed somewhere new) starts empty of history.
                slot.State = FacetState.NotSynchronised;
                slot.Reason = "new facet: needs a full resync";
                slot.Dirty.MarkFull();
                slot.Dirty.MarkNamespaceDirty();
            }
            if (slot.Dirty.CorruptionReport is not null)
            {
                if (slot.IsLocal && slot.State == FacetState.Synchronised)
                {
                    // A Synchronised local facet misses nothing, so its map named nothing: it keeps serving.
                    slot.Dirty.ClearAll();
                    _log.LogWarning("facet {Facet}: it is Synchronised, so its damaged dirty map named nothing; started empty", slot.Name);
                }
                else if (slot.State is FacetState.Synchronised or FacetState.Offline)
                {
                    slot.State = FacetState.NotSynchronised; // what it missed is not known any more: the map reads "all"
                    slot.Reason = "its dirty map was damaged: full resync";
                }
            }
            try
            {
                await slot.Facet.OpenAsync(cancellationToken).ConfigureAwait(false);
                if (StoreLost(slot) is { } lost)
                {
                    slot.State = FacetState.NotSynchronised;
                    slot.Reason = lost;
                }
            }
            catch (MirrorException ex)
            {
                _log.LogError("facet {Facet} could not be opened: {Message}", slot.Name, ex.Message);
                if (slot.IsLocal)
                {
                    // A local facet misses every change while it is out; a remote's are still in the queue.
                    slot.Dirty.MarkNamespaceDirty();
                }
                slot.State = slot.IsLocal ? FacetState.NotSynchronised : slot.State == FacetState.Synchronised ? FacetState.Offline : slot.State;
                slot.Reason = $"could not be opened: {ex.Message}";
            }
        }

        FacetSlot? ahead = _aheadOfState = saved is not null ? TakeRemoteAheadOfState() : null;
        if (saved is not null)
        {
            await DetectEmptiedFacetsAsync(_slots.Where(s => s.IsLocal && s.State == FacetState.Synchronised), FileTable.CountKnown(_options.StateDir), cancellationToken).ConfigureAwait(false);
        }
        FacetSlot? reference = _slots.FirstOrDefault(s => s.IsLocal && s.State == FacetState.Synchronised);
        if (saved is null)
        {
            await DecideInitialStatesAsync(reference, cancellationToken).ConfigureAwait(false);
        }
        FacetSlot? serving = null;
        if (reference is null)
        {
            // No local facet can serve. With a Synchronised remote the volume opens degraded (the seed's Figure 4) and
            // the local facets are rebuilt from that remote by their resync. After a stop that did not close (a kill
            // during a rebuild, say) too: while degraded, every write was acknowledged only once that remote had
            // committed it, so the remote is the reference the crash recovery compares against.
            serving = ahead ?? _slots.FirstOrDefault(s => !s.IsLocal && s.State == FacetState.Synchronised && s.Dirty.IsEmpty);
            if (serving is null)
            {
                string why = string.Join("; ", _slots.Where(s => s.IsLocal).Select(s => $"'{s.Name}': {s.State} ({s.Reason})"));
                throw new MirrorException(MirrorError.Unavailable,
                    $"volume '{_options.Name}': no Synchronised local facet can be opened ({why}){(unclean ? " and the last run did not stop cleanly" : "")}, and no remote facet is Synchronised to serve meanwhile; fix the local folder or restore from a remote facet ('cmfs restore')");
            }
            _log.LogWarning("volume {Volume}: no local facet can serve; serving from remote facet {Facet} until a local one is rebuilt", _options.Name, serving.Name);
        }

        _files = await FileTable.OpenAsync(_options.StateDir, reference?.Facet, closedAt, _options.CaseInsensitiveNames, cancellationToken, machineRestarted,
            adopt: ahead?.Facet).ConfigureAwait(false);
        // After a clean stop only: after a crash the names that differ are the operations in flight, which the crash
        // recovery below marks (its namespace mark covers them) and which are no edits made outside cmfs.
        if (closedAt is not null && reference is not null && _files.Reconciled is { } found && (found.Added.Count > 0 || found.Removed > 0 || found.Changed.Count > 0))
        {
            MarkChangedOutsideCmfs(reference, found);
        }
        if (_files.Damage is { } damage)
        {
            _log.LogWarning("the table of file names was damaged ({Damage}): rebuilt from {Facet}'s tree; the files it had lost get new ids",
                damage, (reference ?? serving)?.Name);
        }

        List<Location>? restartLost = [];
        if (machineRestarted)
        {
            restartLost = await ActivityLocationsAsync((reference ?? serving)!, cancellationToken).ConfigureAwait(false);
            if (restartLost is not null && _files.Reconciled is { } lostNames)
            {
                // Files the table of names lost with the OS cache came back under new ids, which no logged region
                // names: their bytes are compared whole (a copy the remote got before the cut may be older).
                foreach (var (id, _, kind, length) in lostNames.Added)
                {
                    for (long b = 0; kind == NodeKind.File && b <= (length - 1) / BlockSize && length > 0; b++)
                    {
                        restartLost.Add(new Location(id, b));
                    }
                }
            }
            _log.LogWarning("volume {Volume}: the machine restarted while the volume was open (power loss or crash): {What} compared again on every other facet",
                _options.Name, restartLost is null ? "its activity log was damaged, so every block is" : $"{restartLost.Count} block(s) in {_activity?.Recovered?.Count ?? 0} region(s) being written are");
        }
        var remoteNames = _slots.Where(s => !s.IsLocal).Select(s => s.Name).ToList();
        if (remoteNames.Count > 0 || PathProbe.IsDirectory(_options.QueuePath))
        {
            _queue = TransactionQueue.Open(_options.QueuePath, _options.Queue, _options.BlockSize, remoteNames);
            _queue.SpaceFreed += () => _spaceFreed.Set();
            DetectLostQueue(_queue);
            ApplyQueueRecovery(_queue.Recovery, unclean, (reference ?? serving)!, restartLost);
            foreach (FacetSlot slot in _slots.Where(s => !s.IsLocal))
            {
                slot.QueueActive = _queue.IsActive(slot.Name);
            }
        }
        else if (unclean)
        {
            MarkAfterCrash((reference ?? serving)!, restartLost ?? [], full: true);
        }
        if (restartLost is null)
        {
            foreach (FacetSlot slot in _slots.Where(s => s != (reference ?? serving)))
            {
                FullResyncAtOpen(slot, "the machine restarted while the volume was open, and the activity log that says where writes were under way was damaged: full resync");
            }
        }
        if (saved is not null && _queue is not null)
        {
            // A directory remote that should hold everything (still Synchronised or Offline, nothing waiting for it in
            // the queue) but is empty. An object store's emptying is caught by its identity (StoreLost) instead.
            await DetectEmptiedFacetsAsync(_slots.Where(s => !s.IsLocal && s.State is FacetState.Synchronised or FacetState.Offline
                && IFacetDecorator.Unwrap(s.Facet) is not IStoreIdentity
                && _queue.CursorInfo(s.Name) is { Active: true } c && c.Head >= c.Tail), _files.Count - 1, cancellationToken).ConfigureAwait(false); // the root aside
        }
        RefreshLists();
        FacetStateStore.Save(_options.StateDir, _slots);
        foreach (FacetSlot local in _slots.Where(s => s.IsLocal))
        {
            if (IFacetDecorator.Unwrap(local.Facet) is IUnqueuedMark { UnqueuedBy: not null } mark)
            {
                mark.ClearUnqueued(); // decided above, and the decision (held remotes) is saved
            }
        }
        // What the log named is in the dirty maps now (flushed): it starts empty for this run.
        _activity?.Reset();
        _activityRecovered = true;
        // On stable storage, as the activity log is: a marker lost to a power cut would make the next open take the
        // run for one that closed.
        AtomicFile.Write(RunningMarker, System.Text.Encoding.UTF8.GetBytes($"{Environment.ProcessId}\nboot {BootId.Current ?? "unknown"}\n"));
    }

    private bool _activityRecovered;

    /// <summary>The boot id the running marker recorded; null when it recorded none (an older build) or cannot be read.</summary>
    private string? ReadBootOfMarker()
    {
        try
        {
            foreach (string line in File.ReadAllLines(RunningMarker))
            {
                if (line.StartsWith("boot ", StringComparison.Ordinal) && line[5..].Trim() is { Length: > 0 } id && id != "unknown")
                {
                    return id;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>
    /// A facet whose folder is empty while the table of names knows files lost what it held: a local one its disk (or
    /// it was pointed at a new one), a directory remote was emptied outside cmfs. It must not serve, nor be taken as
    /// the truth, nor be called Synchronised over nothing; a full resync rebuilds it.
    /// </summary>
    private async Task DetectEmptiedFacetsAsync(IEnumerable<FacetSlot> candidates, int known, CancellationToken cancellationToken)
    {
        if (known == 0)
        {
            return;
        }
        foreach (FacetSlot slot in candidates.ToList())
        {
            IReadOnlyList<NodeInfo> top;
            try
            {
                top = await slot.Facet.ListAsync("", cancellationToken).ConfigureAwait(false);
            }
            catch (MirrorException)
            {
                continue; // an unreadable facet is caught by its first operation
            }
            if (top.Count == 0)
            {
                FullResyncAtOpen(slot, slot.IsLocal
                    ? $"its folder is empty but the volume has {known} file(s) and folder(s): the disk was lost or replaced; a full resync rebuilds it"
                    : $"its folder is empty but the volume has {known} file(s) and folder(s): it was emptied or replaced outside cmfs; a full resync sends everything again");
            }
        }
    }

    /// <summary>
    /// The local folder was changed while the volume was not running (files edited, added or deleted in the plain
    /// folder): nothing of it went through the queue, so every other facet is marked for what changed (the changed
    /// and added files whole, a namespace mark when names came or went) and resynchronised. Not marked, they used to
    /// stay Synchronised without the changes. A file overwritten in place with its old time kept (cp -p) is not seen.
    /// </summary>
    private void MarkChangedOutsideCmfs(FacetSlot reference, FileTable.ReconcileReport found)
    {
        var files = found.Added.Where(a => a.Kind == NodeKind.File).Select(a => (a.Id, a.Path, a.Length)).Concat(found.Changed).ToList();
        int count = found.Added.Count + found.Removed + found.Changed.Count;
        string reason = $"{found.Added.Count} name(s) added, {found.Removed} removed and {found.Changed.Count} file(s) changed in '{reference.Name}'s folder outside cmfs: resync";
        foreach (FacetSlot slot in _slots.Where(s => s != reference))
        {
            slot.Dirty.MarkNamespaceDirty(); // names, lengths and times too
            foreach (var (id, _, length) in files)
            {
                if (length > 0)
                {
                    slot.Dirty.SetRange(id, 0, (length - 1) / BlockSize);
                }
            }
            slot.Dirty.Flush();
            if (slot.State is FacetState.Synchronised or FacetState.Offline)
            {
                slot.State = FacetState.NotSynchronised;
                slot.Reason = reason;
            }
        }
        string which = string.Join(", ", found.Added.Select(a => a.Path).Concat(found.Changed.Select(c => c.Path)).Take(10));
        _log.LogWarning("volume {Volume}: {Count} change(s) were made in {Facet}'s folder while the volume was not running ({Which}{More}); the other facets are resynchronised with them",
            _options.Name, count, reference.Name, which, count > 10 ? ", …" : "");
    }

    /// <summary>
    /// After an unclean stop, an operation in flight may have reached one facet and not another: every facet but the
    /// reference gets the locations that may differ and a namespace mark, and is resynchronised.
    /// </summary>
    private void MarkAfterCrash(FacetSlot reference, IReadOnlyList<Location> locations, bool full)
    {
        if (!reference.IsLocal && locations.Count > 0 && reference != _aheadOfState)
        {
            // Served from a remote: a write acknowledged before the local facet failed, still only in the queue's
            // memory when the process stopped, had its one other copy on the disk that failed. Say where.
            string which = string.Join(", ", locations.Select(l => _files.Get(l.FileId) is { Deleted: false } n ? _files.PathOf(n) : $"file {l.FileId}").Distinct().Take(10));
            _log.LogWarning("volume {Volume}: {Count} block(s) were being written when the process stopped, with {Facet} serving: one written before the local facet failed and not yet sent may be older there than last written: {Files}",
                _options.Name, locations.Count, reference.Name, which);
        }
        // Every facet but the reference, in any state: a local one being rebuilt may have got an operation in flight
        // that the reference did not, and a remote already NotSynchronised (a resync under way, or marked by this
        // open for another reason) still needs the writes the lost records carried: its own map does not name them.
        foreach (FacetSlot slot in _slots.Where(s => s != reference))
        {
            foreach (Location l in locations)
            {
                slot.Dirty.Set(l);
            }
            if (full && slot.IsLocal)
            {
                slot.Dirty.MarkFull();
            }
            slot.Dirty.MarkNamespaceDirty();
            slot.Dirty.Flush();
            if (slot.State is FacetState.Synchronised or FacetState.Offline || slot.IsLocal)
            {
                slot.State = FacetState.NotSynchronised;
                slot.Reason = $"the previous run stopped without closing: {(full && slot.IsLocal ? "full" : $"{locations.Count} location(s) and namespace")} resync needed";
            }
        }
    }

    /// <summary>First open of a volume: facets that hold the same (empty) tree as the reference start Synchronised.</summary>
    private async Task DecideInitialStatesAsync(FacetSlot? reference, CancellationToken cancellationToken)
    {
        bool referenceEmpty = reference is not null && (await reference.Facet.ListAsync("", cancellationToken).ConfigureAwait(false)).Count == 0;
        foreach (FacetSlot slot in _slots)
        {
            if (slot == reference || slot.State != FacetState.Synchronised)
            {
                continue;
            }
            bool empty = (await slot.Facet.ListAsync("", cancellationToken).ConfigureAwait(false)).Count == 0;
            if (!(empty && referenceEmpty))
            {
                slot.State = FacetState.NotSynchronised;
                slot.Reason = $"holds a different tree than '{reference?.Name}': needs a full resync";
                slot.Dirty.MarkFull();
                slot.Dirty.MarkNamespaceDirty();
            }
        }
    }

    /// <summary>
    /// At open: what <paramref name="slot"/> holds is not known any more, so every block and name is compared again
    /// (a full resync); it is NotSynchronised for <paramref name="reason"/>, which is logged.
    /// </summary>
    private void FullResyncAtOpen(FacetSlot slot, string reason)
    {
        MarkAllDirty(slot);
        slot.State = FacetState.NotSynchronised;
        slot.Reason = reason;
        _log.LogError("facet {Facet}: {Reason}", slot.Name, reason);
    }

    /// <summary>
    /// A remote facet fed by another queue than the one open now lost the records that queue held for it (the queue
    /// folder was deleted, or it is on a disk that is not mounted, and a new empty one was made): which locations they
    /// touched is unknown, so the facet is resynchronised in full. Then every remote records this queue's id.
    /// </summary>
    private void DetectLostQueue(TransactionQueue queue)
    {
        string unqueued = UnqueuedWriter(queue.Id);
        foreach (FacetSlot slot in _slots.Where(s => !s.IsLocal))
        {
            var store = IFacetDecorator.Unwrap(slot.Facet) as IStoreIdentity;
            // The failure was saved but the store did not answer at this open: whether it got synchronous commits is
            // looked at when it does (CheckWrittenAfterQueueFailure), so the mark stays.
            bool unconfirmed = slot.QueueId == unqueued && WriterOf(slot, queue.Id) is null;
            if (slot.QueueId is { } known && known != queue.Id && known != unqueued)
            {
                FullResyncAtOpen(slot, $"the queue at {_options.QueuePath} is not the one that fed it (deleted, or its disk not mounted): what it held is unknown; full resync");
            }
            else if (slot.Held)
            {
                // Nothing is sent to it until the user decides; what the queue holds for it is older than what it has.
                if (queue.IsActive(slot.Name))
                {
                    queue.Release(slot.Name, slot.Dirty);
                }
                slot.UnqueuedThrough ??= queue.Tail;
            }
            else if (WriterOf(slot, queue.Id) == unqueued)
            {
                // Its newest commit was written synchronously after this queue failed: every record the queue held then
                // is older than its image, and a replay would put old bytes over new ones. Records made since (a run
                // in which no commit of this queue's reached it) come after that position and are sent.
                slot.UnqueuedThrough ??= queue.Tail;
                long through = Math.Min(slot.UnqueuedThrough.Value, queue.Tail);
                if (queue.IsActive(slot.Name) && queue.HeadOf(slot.Name) < through)
                {
                    _log.LogWarning("facet {Facet}: the queue's records up to {Through} are older than its image (written after the queue failed): not sent again", slot.Name, through);
                    queue.Skip(slot.Name, through);
                }
            }
            else if (slot.QueueId is not null && store is { LastWriter: { } writer } && writer != queue.Id)
            {
                // (A state that never fed this store, a new machine's say, is not asked: its first open compares the
                // trees instead, and a store restored from is not sent again.)
                // The store's newest commit came from another cmfs state (this state folder was away, on a disk not
                // mounted or restored from a backup, while another one wrote the store): the records this queue still
                // holds are older than what the store has, and replaying them would put old bytes over new ones.
                FullResyncAtOpen(slot, $"its newest commit was written by another cmfs state (queue {writer}), not this one's ({queue.Id}) at {_options.QueuePath}: what this queue holds for it is older than what it has; full resync from this volume");
                queue.Release(slot.Name, slot.Dirty); // those records are never sent: the resync takes the facet from here
            }
            slot.QueueId = unconfirmed ? unqueued : queue.Id;
            if (store is not null)
            {
                store.Writer = queue.Id;
            }
            if (WriterOf(slot, queue.Id) == queue.Id)
            {
                slot.UnqueuedThrough = null; // a commit of this queue's landed since (a directory facet: its mark is gone)
            }
        }
    }

    /// <summary>
    /// Moves what the previous run may have lost into the dirty maps of the remote facets that had not committed it:
    /// the write-intent locations after a crash; those plus a namespace mark (and a full mark unless the damage is a
    /// torn tail) after a damaged segment. The facets are then NotSynchronised; the queue keeps feeding them too.
    /// </summary>
    private void ApplyQueueRecovery(QueueRecovery recovery, bool unclean, FacetSlot reference, IReadOnlyList<Location>? restartLost)
    {
        QueueRecovery = recovery;
        if (unclean || recovery.LostLocations.Count > 0)
        {
            IReadOnlyList<Location> lost = restartLost is { Count: > 0 } ? [.. recovery.LostLocations.Concat(restartLost).Distinct()] : recovery.LostLocations;
            MarkAfterCrash(reference, lost, full: recovery.LostUnknown);
        }
        foreach (QueueCorruption c in recovery.Corruptions)
        {
            _log.LogError("{Corruption}", c.ToString());
        }
        if (recovery.CursorsLost is { } cursorsLost)
        {
            _log.LogWarning("{Problem}", cursorsLost);
        }
        foreach (FacetSlot slot in _slots.Where(s => !s.IsLocal && recovery.Corruptions.Count > 0))
        {
            QueueCursorInfo cursor = _queue!.CursorInfo(slot.Name);
            if (cursor.Active && cursor.Head >= cursor.Tail)
            {
                continue; // it had committed everything: the damage cost it nothing
            }
            foreach (Location l in recovery.LostLocations)
            {
                slot.Dirty.Set(l);
            }
            if (recovery.LostUnknown || recovery.Corruptions.Any(c => !c.TornTail))
            {
                slot.Dirty.MarkFull();
            }
            slot.Dirty.MarkNamespaceDirty();
            slot.Dirty.Flush();
            slot.State = FacetState.NotSynchronised;
            slot.Reason = $"queue damaged at {recovery.Corruptions[0].File} offset {recovery.Corruptions[0].Offset}: dirty-map resync needed";
        }
        FacetStateStore.Save(_options.StateDir, _slots);
        _queue!.AcknowledgeRecovery();
    }

    /// <summary>Closes the volume cleanly: queue checkpointed, maps and table flushed, facets closed, lock released.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await StopActivityTrimmerAsync().ConfigureAwait(false);
        await StopLocalResyncsAsync().ConfigureAwait(false);
        await StopReplicationAsync().ConfigureAwait(false);
        await _namespaceGate.WaitAsync().ConfigureAwait(false);
        bool closeIncomplete = false;
        try
        {
            foreach (FacetSlot s in _slots.Where(s => s.IsLocal && s.State == FacetState.Synchronised))
            {
                try
                {
                    await s.Facet.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (MirrorException e)
                {
                    _log.LogError("facet {Facet}: flush at close failed: {Message}", s.Name, e.Message);
                }
            }
            try
            {
                _queue?.Dispose();
            }
            catch (Exception e) when (_queueFailed && e is IOException or UnauthorizedAccessException)
            {
                _log.LogError("queue: could not be closed on its failed storage ({Message}); the dirty maps cover what it held", e.Message);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Its records are covered by its intent marks, which it did not clear: the next open recovers it as after
                // a crash, and so does the volume (the running marker stays, below).
                closeIncomplete = true;
                _log.LogError("queue: closing it failed ({Message}); the next mount recovers as after a crash", e.Message);
            }
            try
            {
                _files?.Dispose();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                closeIncomplete = true;
                _log.LogError("the table of names could not be saved at close ({Message}); the next mount recovers as after a crash", e.Message);
            }
            if (_files is not null)
            {
                lock (_stateLock)
                {
                    SaveStatesLocked(); // logged when it fails; the running marker then stays, so the next open recovers
                }
            }
        }
        finally
        {
            foreach (FacetSlot s in _slots)
            {
                s.Dirty.Dispose();
                await s.Facet.DisposeAsync().ConfigureAwait(false);
            }
            if (_files is not null && !_statesUnsaved && !closeIncomplete)
            {
                if (_activityRecovered)
                {
                    try
                    {
                        _activity?.Reset(); // everything is on the disk: closed above
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        _log.LogError("the activity log {Path} could not be emptied at close ({Message}): after a machine restart its regions are compared again", _activity!.Path, e.Message);
                    }
                }
                File.Delete(RunningMarker);
            }
            _activity?.Dispose();
            _lockFile?.Dispose();
            _namespaceGate.Release();
        }
    }
}
