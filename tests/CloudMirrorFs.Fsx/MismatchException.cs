namespace CloudMirrorFs.Fsx;

/// <summary>The tree under test differs from the reference; the message is the first line of the report.</summary>
internal sealed class MismatchException : Exception
{
    public MismatchException(string message, string details)
        : base(message)
    {
        Details = details;
    }

    /// <summary>The body of the report: the range, the first difference, the bytes around it.</summary>
    public string Details { get; }
}
