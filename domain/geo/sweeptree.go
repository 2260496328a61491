package geo

// tree is an AVL tree of the edges active in the validation sweep, in
// their order along the sweep line. Its nodes are the edges themselves
// (node i is edge i), so that an edge's neighbours are found from the edge
// in O(log n), and the order is given by the comparison of an edge being
// inserted with those on its path, the only moment two edges are
// compared: it is deterministic and needs no keys, and the tree is
// balanced whatever order the edges come in.
type tree struct {
	root  int32
	nodes []treeNode
}

type treeNode struct {
	left, right, parent int32 // -1: none
	height              int8
}

func newTree(n int) *tree {
	t := &tree{root: -1, nodes: make([]treeNode, n)}
	for i := range t.nodes {
		t.nodes[i] = treeNode{left: -1, right: -1, parent: -1}
	}
	return t
}

func (t *tree) height(x int32) int8 {
	if x < 0 {
		return 0
	}
	return t.nodes[x].height
}

// insert adds x where compare (x against a node: +1 when x goes after it)
// puts it, or stops at the first conflict compare reports.
func (t *tree) insert(x int32, compare func(x, n int32) (int, *conflict)) *conflict {
	nx := &t.nodes[x]
	*nx = treeNode{left: -1, right: -1, parent: -1, height: 1}
	if t.root < 0 {
		t.root = x
		return nil
	}
	n := t.root
	for {
		c, bad := compare(x, n)
		if bad != nil {
			return bad
		}
		next := &t.nodes[n].left
		if c > 0 {
			next = &t.nodes[n].right
		}
		if *next < 0 {
			*next = x
			nx.parent = n
			break
		}
		n = *next
	}
	t.rebalance(n)
	return nil
}

// remove takes x out of the tree.
func (t *tree) remove(x int32) {
	nx := t.nodes[x]
	var from int32 // where heights may have changed
	switch {
	case nx.left < 0:
		t.transplant(x, nx.right)
		from = nx.parent
	case nx.right < 0:
		t.transplant(x, nx.left)
		from = nx.parent
	default:
		// Put x's successor y (the leftmost node of its right subtree, which
		// has no left child) in x's place.
		y := nx.right
		for t.nodes[y].left >= 0 {
			y = t.nodes[y].left
		}
		from = y
		if t.nodes[y].parent != x {
			from = t.nodes[y].parent
			t.transplant(y, t.nodes[y].right)
			t.nodes[y].right = nx.right
			t.nodes[nx.right].parent = y
		}
		t.transplant(x, y)
		t.nodes[y].left = nx.left
		t.nodes[nx.left].parent = y
		t.nodes[y].height = nx.height
	}
	t.nodes[x] = treeNode{left: -1, right: -1, parent: -1}
	t.rebalance(from)
}

// transplant puts v (possibly none) where u is, as its parent's child.
func (t *tree) transplant(u, v int32) {
	p := t.nodes[u].parent
	switch {
	case p < 0:
		t.root = v
	case t.nodes[p].left == u:
		t.nodes[p].left = v
	default:
		t.nodes[p].right = v
	}
	if v >= 0 {
		t.nodes[v].parent = p
	}
}

// rebalance restores heights and balance from x up to the root.
func (t *tree) rebalance(x int32) {
	for x >= 0 {
		n := &t.nodes[x]
		bal := t.height(n.left) - t.height(n.right)
		switch {
		case bal > 1:
			if l := n.left; t.height(t.nodes[l].left) < t.height(t.nodes[l].right) {
				t.rotateLeft(l)
			}
			x = t.rotateRight(x)
		case bal < -1:
			if r := n.right; t.height(t.nodes[r].right) < t.height(t.nodes[r].left) {
				t.rotateRight(r)
			}
			x = t.rotateLeft(x)
		default:
			t.fix(x)
		}
		x = t.nodes[x].parent
	}
}

func (t *tree) fix(x int32) {
	n := &t.nodes[x]
	n.height = 1 + max(t.height(n.left), t.height(n.right))
}

// rotateLeft lifts x's right child above x and returns it.
func (t *tree) rotateLeft(x int32) int32 {
	y := t.nodes[x].right
	t.nodes[x].right = t.nodes[y].left
	if l := t.nodes[y].left; l >= 0 {
		t.nodes[l].parent = x
	}
	t.transplant(x, y)
	t.nodes[y].left = x
	t.nodes[x].parent = y
	t.fix(x)
	t.fix(y)
	return y
}

// rotateRight lifts x's left child above x and returns it.
func (t *tree) rotateRight(x int32) int32 {
	y := t.nodes[x].left
	t.nodes[x].left = t.nodes[y].right
	if r := t.nodes[y].right; r >= 0 {
		t.nodes[r].parent = x
	}
	t.transplant(x, y)
	t.nodes[y].right = x
	t.nodes[x].parent = y
	t.fix(x)
	t.fix(y)
	return y
}

// prev returns the node before x in order, -1 for none.
func (t *tree) prev(x int32) int32 {
	if l := t.nodes[x].left; l >= 0 {
		for t.nodes[l].right >= 0 {
			l = t.nodes[l].right
		}
		return l
	}
	for p := t.nodes[x].parent; p >= 0; x, p = p, t.nodes[p].parent {
		if t.nodes[p].right == x {
			return p
		}
	}
	return -1
}

// next returns the node after x in order, -1 for none.
func (t *tree) next(x int32) int32 {
	if r := t.nodes[x].right; r >= 0 {
		for t.nodes[r].left >= 0 {
			r = t.nodes[r].left
		}
		return r
	}
	for p := t.nodes[x].parent; p >= 0; x, p = p, t.nodes[p].parent {
		if t.nodes[p].left == x {
			return p
		}
	}
	return -1
}
