package jobcmd

// FillWaiting takes every place of the commands waiting for the read
// model, as MaxWaiting commands waiting at once would.
func (c *Commands) FillWaiting() {
	for len(c.waiting) < cap(c.waiting) {
		c.waiting <- struct{}{}
	}
}
