using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Queue;

/// <summary>
/// Where the queue keeps the bytes of records held in memory: large slabs, filled front to back, recycled once every
/// record in them is released. A spare slab is allocated and touched ahead of need on a background thread, so a write
/// copies into memory that is already mapped instead of taking a page fault per page of fresh heap (measured: that
/// fault was most of the cost the queue added to a 4 KiB write). Slabs never exceed <c>queue.memoryLimit</c> plus
/// the spare. Free slabs are kept for the next burst, but not for ever: once no slab has been taken for a whole
/// <see cref="IdleTrimPeriod"/>, all but one go back to the garbage collector (<see cref="TrimIdle"/>).
/// </summary>
internal sealed class DataArena : IDisposable
{
    /// <summary>How long the arena must go without taking a slab before it lets its spare ones go.</summary>
    public static readonly TimeSpan IdleTrimPeriod = TimeSpan.FromSeconds(30);

    private readonly int _slabSize;
    private readonly int _dedicatedThreshold;

    private readonly Lock _lock = new();
    private readonly Stack<Slab> _free = new();
    private readonly long _maxSlabs;
    private Slab? _current;
    private int _offset;
    private long _slabs;
    private bool _prefaulting;
    private long _takes;
    private long _takesAtLastTrim;
    private readonly Timer _trimTimer;

    public DataArena(long memoryLimit)
    {
        // A quarter of the limit per slab, between 64 KiB and 16 MiB: a small limit is not overrun by one slab.
        _slabSize = (int)Math.Clamp(memoryLimit / 4, 64 * 1024, 16 << 20);
        _dedicatedThreshold = _slabSize / 4;
        _maxSlabs = Math.Max(1, memoryLimit / _slabSize) + 1;
        _trimTimer = new Timer(static a => ((DataArena)a!).TrimIdle(), this, IdleTrimPeriod, IdleTrimPeriod);
    }

    /// <summary>
    /// Lets every free slab but one go when no slab was taken since the previous call (the timer calls it each
    /// <see cref="IdleTrimPeriod"/>); returns how many went.
    /// </summary>
    internal int TrimIdle()
    {
        int dropped = 0;
        lock (_lock)
        {
            if (_takes == _takesAtLastTrim)
            {
                while (_free.Count > 1)
                {
                    _free.Pop();
                    Interlocked.Decrement(ref _slabs);
                    dropped++;
                }
            }
            _takesAtLastTrim = _takes;
        }
        if ((long)dropped * _slabSize >= GiveBackAtOnce && TakeGiveBackTurn())
        {
            // The collector would keep the slabs' memory committed for its own next use (measured: 918 MiB still
            // committed 25 s after 54 slabs were dropped): an idle drive should not hold a burst's worth of memory.
            // A compacting collection of what is left is short, once per burst.
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
        return dropped;
    }

    /// <summary>Slab bytes dropped at once past which the memory is handed back to the system, not only to the collector.</summary>
    internal const long GiveBackAtOnce = 64L << 20;

    // The last such collection in this process: arenas that trim in the same tick (two per queue, several volumes)
    // share one, since each stops every thread for its length.
    private static long s_lastGiveBack = long.MinValue;

    /// <summary>Tests: the next arena to let 64 MiB or more go gives it back, whenever the last one did.</summary>
    internal static void ResetGiveBackTurn() => Interlocked.Exchange(ref s_lastGiveBack, long.MinValue);

    private static bool TakeGiveBackTurn()
    {
        long now = Environment.TickCount64, last = Interlocked.Read(ref s_lastGiveBack);
        return (last == long.MinValue || now - last >= (long)IdleTrimPeriod.TotalMilliseconds / 2)
            && Interlocked.CompareExchange(ref s_lastGiveBack, now, last) == last;
    }

    public void Dispose() => _trimTimer.Dispose();

    /// <summary>Bytes of slabs allocated.</summary>
    public long AllocatedBytes => Interlocked.Read(ref _slabs) * _slabSize;

    /// <summary>
    /// Copies <paramref name="data"/> into the arena; returns the copy and its owner: the slab that holds it, or the
    /// collector for a large, dedicated copy. The caller gives its hold back with <see cref="IBufferOwner.Release"/>.
    /// </summary>
    public (ReadOnlyMemory<byte> Copy, IBufferOwner Owner) Copy(ReadOnlySpan<byte> data)
    {
        if (data.Length > _dedicatedThreshold)
        {
            byte[] own = GC.AllocateUninitializedArray<byte>(data.Length);
            data.CopyTo(own);
            return (own, BufferOwner.Collected);
        }
        lock (_lock)
        {
            (Memory<byte> target, Slab slab) = ReserveLocked(data.Length);
            data.CopyTo(target.Span);
            return (target, slab);
        }
    }

    /// <summary>
    /// Room for <paramref name="length"/> bytes that the caller fills (a spilled record read back from its segment), and
    /// its owner, holding it once: the caller gives that hold back with <see cref="IBufferOwner.Release"/>.
    /// </summary>
    public (Memory<byte> Room, IBufferOwner Owner) Reserve(int length)
    {
        if (length > _dedicatedThreshold)
        {
            return (GC.AllocateUninitializedArray<byte>(length), BufferOwner.Collected);
        }
        lock (_lock)
        {
            return ReserveLocked(length);
        }
    }

    private (Memory<byte> Room, Slab Slab) ReserveLocked(int length)
    {
        if (_current is null || _offset + length > _slabSize)
        {
            Slab? old = _current;
            _current = TakeLocked();
            _offset = 0;
            if (old is not null && old.Live == 0)
            {
                _free.Push(old);
            }
        }
        Slab slab = _current;
        Memory<byte> room = slab.Buffer.AsMemory(_offset, length);
        _offset += length;
        slab.Live++;
        return (room, slab);
    }

    /// <summary>One more holder of <paramref name="owner"/>'s bytes (a facet keeping a record's data): the slab is not reused until it lets go.</summary>
    private void Retain(Slab owner)
    {
        lock (_lock)
        {
            owner.Live++;
        }
    }

    /// <summary>One record (or other holder) of <paramref name="owner"/> no longer needs it.</summary>
    private void Release(Slab owner)
    {
        lock (_lock)
        {
            owner.Live--;
            if (owner.Live == 0 && owner != _current)
            {
                if (_free.Count + 1 < _maxSlabs)
                {
                    _free.Push(owner);
                }
                else
                {
                    Interlocked.Decrement(ref _slabs); // let the GC have it back
                }
            }
        }
    }

    private Slab TakeLocked()
    {
        _takes++;
        Slab slab = _free.Count > 0 ? _free.Pop() : NewSlab();
        if (_free.Count == 0 && !_prefaulting && Interlocked.Read(ref _slabs) < _maxSlabs)
        {
            _prefaulting = true;
            ThreadPool.UnsafeQueueUserWorkItem(_ =>
            {
                Slab spare = NewSlab();
                lock (_lock)
                {
                    _free.Push(spare);
                    _prefaulting = false;
                }
            }, null);
        }
        return slab;
    }

    private Slab NewSlab()
    {
        Interlocked.Increment(ref _slabs);
        byte[] buffer = GC.AllocateUninitializedArray<byte>(_slabSize, pinned: true);
        for (int i = 0; i < buffer.Length; i += 4096)
        {
            buffer[i] = 0; // touch every page now, off the write path
        }
        return new Slab(buffer, this);
    }

    /// <summary>One slab and how many live records (and facets keeping their bytes) it holds.</summary>
    internal sealed class Slab(byte[] buffer, DataArena arena) : IBufferOwner
    {
        public byte[] Buffer { get; } = buffer;

        public int Live { get; set; }

        public void Retain() => arena.Retain(this);

        public void Release() => arena.Release(this);
    }
}
