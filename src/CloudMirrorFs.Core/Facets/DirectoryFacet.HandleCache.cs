using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CloudMirrorFs.Facets;

public sealed partial class DirectoryFacet
{
    /// <summary>
    /// Open handles by file id, bounded: a lease keeps a handle open while it is in use; unused handles beyond the
    /// bound are closed, oldest use first, after a flush when they were written since the last barrier. A handle is
    /// used only for the path it was opened at: asked for at another (the file renamed, or a resync that removed the
    /// file under that id and gives the id another file's name), it is closed the same way and the path opened.
    /// </summary>
    private sealed partial class HandleCache : IDisposable
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<long, Entry> _entries = [];
        private readonly int _max;
        private long _clock;
        private long _flushes;

        public HandleCache(int max) => _max = Math.Max(1, max);

        public Lease Acquire(long id, string path, Func<SafeFileHandle> open)
        {
            lock (_lock)
            {
                if (_entries.TryGetValue(id, out Entry? e) && !e.Closed)
                {
                    if (e.Path == path)
                    {
                        e.Users++;
                        e.LastUse = ++_clock;
                        return new Lease(this, e);
                    }
                    RetireLocked(e);
                }
            }
            SafeFileHandle handle = open();
            lock (_lock)
            {
                if (_entries.TryGetValue(id, out Entry? raced) && !raced.Closed && raced.Path == path)
                {
                    handle.Dispose();
                    raced.Users++;
                    raced.LastUse = ++_clock;
                    return new Lease(this, raced);
                }
                if (raced is not null && !raced.Closed)
                {
                    RetireLocked(raced);
                }
                var e = new Entry(id, path, handle) { Users = 1, LastUse = ++_clock };
                _entries[id] = e;
                EvictLocked();
                return new Lease(this, e);
            }
        }

        /// <summary>Caches a handle just opened by the caller at <paramref name="path"/> (replacing any for the same id).</summary>
        public void Add(long id, string path, SafeFileHandle handle)
        {
            lock (_lock)
            {
                if (_entries.Remove(id, out Entry? old))
                {
                    old.Closed = true;
                    if (old.Users == 0)
                    {
                        old.Handle.Dispose();
                    }
                }
                _entries[id] = new Entry(id, path, handle) { LastUse = ++_clock };
                EvictLocked();
            }
        }

        /// <summary>Marks <paramref name="id"/>'s handle written, if one is cached: its next flush covers a change made by path.</summary>
        public void MarkDirtyIfCached(long id)
        {
            lock (_lock)
            {
                if (_entries.TryGetValue(id, out Entry? e) && !e.Closed)
                {
                    e.Dirty = true;
                }
            }
        }

        public void Close(long id)
        {
            lock (_lock)
            {
                if (_entries.Remove(id, out Entry? e))
                {
                    e.Closed = true;
                    if (e.Users == 0)
                    {
                        e.Handle.Dispose();
                    }
                }
            }
        }

        public void CloseAll()
        {
            lock (_lock)
            {
                foreach (Entry e in _entries.Values)
                {
                    e.Closed = true;
                    if (e.Dirty)
                    {
                        Fsync(e.Handle);
                    }
                    if (e.Users == 0)
                    {
                        e.Handle.Dispose();
                    }
                }
                _entries.Clear();
            }
        }

        /// <summary>
        /// Flushes every handle written since its last flush, or only <paramref name="id"/>'s. Returns once a flush
        /// of each of them that was under way (another caller's) has completed too: that one cleared the mark, so
        /// returning before it would skip writes this caller has to cover.
        /// </summary>
        public void FlushDirty(long? id = null)
        {
            List<Entry> picked;
            lock (_lock)
            {
                picked = id is { } one
                    ? _entries.TryGetValue(one, out Entry? only) && (only.Dirty || only.Flushing > 0) ? [only] : []
                    : [.. _entries.Values.Where(e => e.Dirty || e.Flushing > 0)];
                foreach (Entry e in picked)
                {
                    e.Users++;
                    e.Flushing++;
                }
            }
            try
            {
                foreach (Entry e in picked)
                {
                    lock (e.FlushLock)
                    {
                        bool dirty;
                        lock (_lock)
                        {
                            dirty = e.Dirty;
                            e.Dirty = false;
                        }
                        if (dirty)
                        {
                            Fsync(e.Handle);
                        }
                    }
                }
            }
            finally
            {
                foreach (Entry e in picked)
                {
                    lock (_lock)
                    {
                        e.Flushing--;
                    }
                    Release(e);
                }
            }
        }

        public void Dispose() => CloseAll();

        private void Release(Entry e)
        {
            lock (_lock)
            {
                e.Users--;
                if (e.Users == 0 && e.Closed)
                {
                    e.Handle.Dispose();
                }
            }
        }

        /// <summary>Takes an entry out of the cache, flushed when written since the last barrier (which cannot reach it after).</summary>
        private void RetireLocked(Entry e)
        {
            _entries.Remove(e.Id);
            e.Closed = true;
            if (e.Dirty)
            {
                Fsync(e.Handle);
                e.Dirty = false;
            }
            if (e.Users == 0)
            {
                e.Handle.Dispose();
            }
        }

        private void EvictLocked()
        {
            if (_entries.Count <= _max)
            {
                return;
            }
            foreach (Entry victim in _entries.Values.Where(e => e.Users == 0).OrderBy(e => e.LastUse).Take(_entries.Count - _max).ToList())
            {
                _entries.Remove(victim.Id);
                victim.Closed = true;
                if (victim.Dirty)
                {
                    Fsync(victim.Handle); // a barrier later cannot reach a closed handle
                }
                victim.Handle.Dispose();
            }
        }

        /// <summary>How many times a handle has been flushed (fsync) since the cache was made: for tests.</summary>
        public long Flushes => Interlocked.Read(ref _flushes);

        private void Fsync(SafeFileHandle handle)
        {
            Interlocked.Increment(ref _flushes);
            if (OperatingSystem.IsWindows())
            {
                using var fs = new FileStream(new SafeFileHandle(handle.DangerousGetHandle(), ownsHandle: false), FileAccess.ReadWrite, 0);
                fs.Flush(flushToDisk: true);
                return;
            }
            if (CloudMirrorFs.Storage.Libc.Fsync((int)handle.DangerousGetHandle()) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync failed (errno {errno})", errno);
            }
        }

        internal sealed class Entry(long id, string path, SafeFileHandle handle)
        {
            public long Id { get; } = id;

            /// <summary>The volume path the handle was opened at.</summary>
            public string Path { get; } = path;
            public SafeFileHandle Handle { get; } = handle;
            public int Users { get; set; }
            public long LastUse { get; set; }
            public bool Dirty { get; set; }
            public bool Closed { get; set; }

            /// <summary>Flushes of this handle in progress or waiting (guarded by the cache's lock).</summary>
            public int Flushing { get; set; }

            /// <summary>Held around one flush of this handle: a second waits for the first to finish.</summary>
            public Lock FlushLock { get; } = new();
        }

        /// <summary>A use of a cached handle; disposing it ends the use.</summary>
        internal readonly struct Lease(HandleCache cache, Entry entry) : IDisposable
        {
            public SafeFileHandle Handle => entry.Handle;

            public void MarkDirty() => entry.Dirty = true;

            public void Dispose() => cache.Release(entry);
        }
    }
}
