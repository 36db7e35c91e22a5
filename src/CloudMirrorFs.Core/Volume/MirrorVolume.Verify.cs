using System.IO.Hashing;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Volume;

public sealed partial class MirrorVolume
{
    /// <summary>How long verify waits for the remotes to take what is queued before it compares (tests shorten it).</summary>
    internal TimeSpan VerifyDrainBudget { get; set; } = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RepairBudget = TimeSpan.FromMinutes(5);
    private long _lastNamespaceSeq;

    /// <summary>
    /// Online verify: reads and hashes the stored bytes of each facet — for an object store, the highest commit read
    /// afresh from the store and every block object it names, never a cache or a manifest's claim — and compares them
    /// block by block with a Synchronised local facet, each file under its gate so a concurrent write is never
    /// reported. A remote is compared only for what it has received (files changed since its last commit are skipped
    /// and counted). With <paramref name="repair"/>, a local facet is rewritten in place from the reference; a remote
    /// gets the differing locations in its dirty map and is resynchronised (an object store gets new objects and a
    /// new commit, never an overwrite).
    /// </summary>
    public async Task<VerifyReport> VerifyAsync(string? facetName, bool repair, IProgress<(long Done, long Total)>? progress = null,
        CancellationToken cancellationToken = default)
    {
        FacetSlot[] ready = _readyLocals;
        FacetSlot? named = facetName is null ? null : _slots.FirstOrDefault(s => s.Name == facetName)
            ?? throw new MirrorException(MirrorError.InvalidArgument, $"no facet named '{facetName}' in volume '{_options.Name}'");
        FacetSlot reference = ready.FirstOrDefault(s => s != named)
            ?? throw new MirrorException(MirrorError.Unavailable, named is not null && ready.Contains(named)
                ? $"facet '{facetName}' is the only Synchronised local facet: there is nothing to compare it with"
                : $"volume '{_options.Name}': verify needs a Synchronised local facet (see 'cmfs status')");
        List<FacetSlot> targets = named is not null ? [named] : [.. _slots.Where(s => s != reference)];
        var differences = new List<VerifyDifference>();
        long compared = 0, skipped = 0, done = 0;
        List<FileNode> files = [.. _files.Files().Where(f => f.Kind == NodeKind.File && !f.Deleted)];
        long total = Math.Max(1, targets.Count * files.Count);
        foreach (FacetSlot target in targets)
        {
            if (target.State != FacetState.Synchronised)
            {
                differences.Add(new VerifyDifference(target.Name, "", -1, $"facet is {target.State}: resynchronise it first ('cmfs resync --facet {target.Name}')", false));
                done += files.Count;
                continue;
            }
            if (!target.IsLocal)
            {
                await DrainAsync(VerifyDrainBudget, cancellationToken).ConfigureAwait(false);
            }
            var run = new VerifyRun(this, reference, target, repair);
            await run.LoadAsync(cancellationToken).ConfigureAwait(false);
            foreach (FileNode file in files)
            {
                await run.CompareFileAsync(file, cancellationToken).ConfigureAwait(false);
                progress?.Report((++done, total));
            }
            await run.FindExtrasAsync(files, cancellationToken).ConfigureAwait(false);
            if (repair && run.NeedsResync)
            {
                await RepairByResyncAsync(target, run, cancellationToken).ConfigureAwait(false);
            }
            differences.AddRange(run.Differences);
            compared += run.Compared;
            skipped += run.Skipped;
        }
        var report = new VerifyReport
        {
            Differences = differences,
            BlocksCompared = compared,
            BlocksSkipped = skipped,
            Facets = [.. targets.Select(t => t.Name)],
            Reference = reference.Name,
        };
        _log.LogInformation("verify against {Reference}: {Compared} block(s) compared, {Skipped} skipped as changing, {Differences} difference(s), {Open} unrepaired",
            reference.Name, compared, skipped, differences.Count, differences.Count(d => !d.Repaired));
        return report;
    }

    /// <summary>Resynchronises a facet whose differing locations verify marked; the differences count as repaired once it is Synchronised.</summary>
    private async Task RepairByResyncAsync(FacetSlot target, VerifyRun run, CancellationToken cancellationToken)
    {
        SetState(target, FacetState.NotSynchronised, "verify found differences: repairing");
        bool working = target.IsLocal ? _backgroundWork : _replicators.Count > 0;
        if (!working)
        {
            return; // no background work in this process: the next mount resynchronises it
        }
        if (target.IsLocal)
        {
            StartLocalResync(target);
        }
        SignalReplicators();
        var deadline = DateTime.UtcNow + RepairBudget;
        while (DateTime.UtcNow < deadline)
        {
            if (target.State == FacetState.Synchronised && target.Dirty.IsEmpty)
            {
                run.MarkAllRepaired();
                return;
            }
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The comparison of one facet with the reference.</summary>
    private sealed class VerifyRun(MirrorVolume volume, FacetSlot reference, FacetSlot target, bool repair)
    {
        private Dictionary<long, RemoteNode>? _image;
        private long _imageSeq;
        private IObjectStore? _store;

        public List<VerifyDifference> Differences { get; } = [];

        public long Compared { get; private set; }

        public long Skipped { get; private set; }

        public bool NeedsResync { get; private set; }

        public async Task LoadAsync(CancellationToken cancellationToken)
        {
            if (IFacetDecorator.Unwrap(target.Facet) is ObjectStoreFacet objects)
            {
                _store = objects.Store;
                RemoteImage image = await RemoteImage.LoadAsync(_store, null, cancellationToken).ConfigureAwait(false);
                foreach (string problem in image.Problems)
                {
                    Differences.Add(new VerifyDifference(target.Name, "", -1, $"commit: {problem}", false));
                }
                _imageSeq = image.Manifest.QueueSeq;
                _image = [];
                foreach ((string path, RemoteNode n) in image.Manifest.Nodes)
                {
                    if (n.Kind == NodeKind.File)
                    {
                        _image[n.Id] = n;
                    }
                }
            }
        }

        /// <summary>True when the target has had every change to this file (locals always have).</summary>
        private bool Received(FileNode file)
        {
            if (target.IsLocal)
            {
                return true;
            }
            return file.LastSeq <= ReceivedThrough() && (_image is not null || NamesReceived());
        }

        public async Task CompareFileAsync(FileNode file, CancellationToken cancellationToken)
        {
            int blockSize = volume.BlockSize;
            await file.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (file.Deleted)
                {
                    return;
                }
                string path = volume._files.PathOf(file);
                var fileRef = new FileRef(file.Id, path);
                NodeInfo? want = await reference.Facet.StatAsync(path, cancellationToken).ConfigureAwait(false);
                if (want is null)
                {
                    return; // the reference itself lacks it: a namespace matter for its own resync
                }
                long length = want.Value.Length;
                long blocks = (length + blockSize - 1) / blockSize;
                if (!Received(file))
                {
                    Skipped += blocks;
                    return;
                }
                long have;
                RemoteNode? node = null;
                if (_image is not null)
                {
                    if (!_image.TryGetValue(file.Id, out node))
                    {
                        Add(path, -1, "missing", repairedInPlace: false);
                        return;
                    }
                    have = node.Length;
                }
                else
                {
                    NodeInfo? st = await target.Facet.StatAsync(path, cancellationToken).ConfigureAwait(false);
                    if (st is null)
                    {
                        Add(path, -1, "missing", repairedInPlace: false);
                        return;
                    }
                    have = st.Value.Length;
                }
                if (have != length)
                {
                    bool fixedHere = repair && target.IsLocal;
                    if (fixedHere)
                    {
                        await target.Facet.SetLengthAsync(fileRef, length, cancellationToken).ConfigureAwait(false);
                    }
                    Add(path, -1, $"length {have} instead of {length}", fixedHere);
                }
                byte[] a = new byte[blockSize];
                byte[] b = new byte[blockSize];
                for (long block = 0; block < blocks; block++)
                {
                    long offset = block * blockSize;
                    int n = (int)Math.Min(blockSize, length - offset);
                    int got = await reference.Facet.ReadAsync(fileRef, offset, a.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    a.AsSpan(got, n - got).Clear();
                    await ReadTargetAsync(fileRef, node, block, offset, b.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    Compared++;
                    if (XxHash128.HashToUInt128(a.AsSpan(0, n)) == XxHash128.HashToUInt128(b.AsSpan(0, n)))
                    {
                        continue;
                    }
                    bool fixedHere = repair && target.IsLocal;
                    if (fixedHere)
                    {
                        await target.Facet.WriteAsync(fileRef, offset, a.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    }
                    else if (repair)
                    {
                        target.Dirty.Set(new Location(file.Id, block));
                        NeedsResync = true;
                    }
                    Add(path, offset, "content", fixedHere);
                }
            }
            finally
            {
                file.Gate.Release();
            }
        }

        /// <summary>Reads what the target stores for a block: an object store's committed block object, or the facet's bytes.</summary>
        private async Task ReadTargetAsync(FileRef file, RemoteNode? node, long block, long offset, Memory<byte> into, CancellationToken cancellationToken)
        {
            into.Span.Clear();
            if (node is not null)
            {
                long avail = Math.Min(into.Length, Math.Max(0, node.Length - offset));
                if (avail > 0 && node.SourceOf(block) is { } source)
                {
                    // A missing object leaves zeros: reported as a content difference, never skipped.
                    await source.AssembleAsync(into[..(int)avail], async (key, length, ct) =>
                    {
                        try
                        {
                            return await _store!.GetAsync(key, 0, length, ct).ConfigureAwait(false);
                        }
                        catch (MirrorException e) when (e.Error is not MirrorError.Unavailable)
                        {
                            return null; // damaged (checksum, decryption, decompression): a difference like any other
                        }
                    }, cancellationToken).ConfigureAwait(false);
                }
                return;
            }
            await target.Facet.ReadAsync(file, offset, into, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>Files the target holds that the volume does not (object stores: by id in the commit; folders: by path).</summary>
        public async Task FindExtrasAsync(List<FileNode> files, CancellationToken cancellationToken)
        {
            var ids = files.Select(f => f.Id).ToHashSet();
            if (!NamesReceived())
            {
                return; // names changed since what the target holds: extras cannot be told from changes in flight
            }
            if (_image is not null)
            {
                foreach (RemoteNode n in _image.Values.Where(n => !ids.Contains(n.Id)))
                {
                    Add($"(file id {n.Id})", -1, "extra", repairedInPlace: false);
                }
                return;
            }
            var pending = new Stack<string>();
            pending.Push("");
            while (pending.Count > 0)
            {
                string dir = pending.Pop();
                IReadOnlyList<NodeInfo> entries;
                try
                {
                    entries = await target.Facet.ListAsync(dir, cancellationToken).ConfigureAwait(false);
                }
                catch (MirrorException e) when (e.Error == MirrorError.NotFound)
                {
                    continue;
                }
                foreach (NodeInfo e in entries)
                {
                    string path = VolumePath.Combine(dir, e.Name);
                    if (volume.LookupId(path) is null)
                    {
                        Add(path, -1, "extra", repairedInPlace: false);
                    }
                    else if (e.Kind == NodeKind.Directory)
                    {
                        pending.Push(path);
                    }
                }
            }
        }

        /// <summary>True when the target has had every rename and delete so far.</summary>
        private bool NamesReceived()
        {
            if (target.IsLocal)
            {
                return true;
            }
            return Volatile.Read(ref volume._lastNamespaceSeq) <= ReceivedThrough();
        }

        /// <summary>
        /// The sequence number up to which the target (a remote) has every change: its cursor's head, and for an object
        /// store also its image's own position, read afresh. Both, because after a run on a failed queue the image's
        /// position counts the synchronous commits, which continued the queue's numbering, while the queue, working
        /// again at the next mount, numbers on from its own tail: a change made since can be below the image's
        /// position and not in it yet. A remote written synchronously after the queue failed has every change up to
        /// the last one applied to it (its cursor is not moved then): a change is in the table of names before it
        /// reaches that remote, and its acknowledgement waits for it.
        /// </summary>
        private long ReceivedThrough()
        {
            long head = volume._queue is null ? long.MaxValue
                : volume._syncRemotes.Contains(target) ? Volatile.Read(ref volume._syncApplied)
                : volume._queue.CursorInfo(target.Name).Head;
            return _image is not null ? Math.Min(_imageSeq, head) : head;
        }

        private void Add(string path, long offset, string what, bool repairedInPlace)
        {
            if (repair && !repairedInPlace && what != "content")
            {
                target.Dirty.MarkNamespaceDirty(); // names and lengths: the resync's reconciliation brings them back
                NeedsResync = true;
            }
            Differences.Add(new VerifyDifference(target.Name, path, offset, what, repairedInPlace));
        }

        public void MarkAllRepaired()
        {
            for (int i = 0; i < Differences.Count; i++)
            {
                Differences[i] = Differences[i] with { Repaired = true };
            }
        }
    }
}
