using System.Buffers;

namespace CloudMirrorFs.Mount.Linux;

/// <summary>A reusable <see cref="Memory{T}"/> view of a native buffer (one per thread: no allocation per write).</summary>
internal sealed unsafe class NativeMemoryManager : MemoryManager<byte>
{
    private byte* _pointer;
    private int _length;

    public Memory<byte> Wrap(byte* pointer, int length)
    {
        _pointer = pointer;
        _length = length;
        return Memory;
    }

    public void Clear()
    {
        _pointer = null;
        _length = 0;
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}
