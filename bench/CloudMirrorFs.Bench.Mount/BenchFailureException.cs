namespace CloudMirrorFs.Bench.Mount;

/// <summary>The bench cannot go on: a missing prerequisite, a failed tool, or a target that misbehaved.</summary>
internal sealed class BenchFailureException : Exception
{
    public BenchFailureException(string message)
        : base(message)
    {
    }

    public BenchFailureException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
